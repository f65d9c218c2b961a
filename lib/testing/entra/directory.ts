// The directory: the managed identities and service principals registered with the emulator, and how requests find
// them (by client id, object id or resource id; by tenant and client id).
import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import type {
  EmulatedManagedIdentity,
  EmulatedServicePrincipal,
  ManagedIdentitySpec,
  ServicePrincipalRecord,
  ServicePrincipalSpec,
} from './types.js';

/** Tenant names that stand for any tenant (multi-tenant apps). */
export const MULTI_TENANT_ALIASES = new Set(['common', 'organizations']);

/** How the managed-identity endpoint's query selects an identity; none selects the system-assigned one. */
export type ManagedIdentitySelector = 'client_id' | 'object_id' | 'mi_res_id' | undefined;

/** Entra ids (GUIDs, resource ids) compare without regard to case. */
export function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Whether `tenant` is `common` or `organizations`. */
export function isMultiTenantAlias(tenant: string): boolean {
  return MULTI_TENANT_ALIASES.has(tenant.toLowerCase());
}

/** The registered identities. Hands out copies without credentials; keeps the records. */
export class Directory {
  readonly #managedIdentities: EmulatedManagedIdentity[] = [];
  readonly #servicePrincipals: ServicePrincipalRecord[] = [];

  /** Registers a managed identity. User-assigned by default; `{ kind: 'system' }` for the system-assigned one. */
  addManagedIdentity(spec: ManagedIdentitySpec = {}): EmulatedManagedIdentity {
    let identity: EmulatedManagedIdentity;
    if (spec.kind === 'system') {
      if (this.#managedIdentities.some((mi) => mi.kind === 'system'))
        throw new Error('A system-assigned identity is already registered');
      const oid = spec.oid ?? randomUUID();
      identity = {
        kind: 'system',
        oid,
        objectId: oid,
        clientId: spec.clientId ?? randomUUID(),
        resourceId: `/subscriptions/${randomUUID()}/resourceGroups/emulated/providers/Microsoft.Web/sites/emulated`,
      };
    } else {
      if (spec.oid && spec.objectId && spec.oid !== spec.objectId)
        throw new Error('oid and objectId of a managed identity are the same thing; they differ');
      const oid = spec.oid ?? spec.objectId ?? randomUUID();
      identity = {
        kind: 'user',
        oid,
        objectId: oid,
        clientId: spec.clientId ?? randomUUID(),
        resourceId:
          spec.resourceId ??
          `/subscriptions/${randomUUID()}/resourceGroups/emulated/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi-${oid.slice(0, 8)}`,
      };
    }
    this.#managedIdentities.push(identity);
    return { ...identity };
  }

  /** Registers a service principal that may use the client-credentials grant. */
  addServicePrincipal(spec: ServicePrincipalSpec): EmulatedServicePrincipal {
    const record: ServicePrincipalRecord = {
      tenantId: spec.tenantId,
      clientId: spec.clientId,
      oid: spec.oid ?? randomUUID(),
      ...(spec.clientSecret !== undefined ? { clientSecret: spec.clientSecret } : {}),
    };
    if (spec.certificate !== undefined) {
      const der = firstCertificateDer(spec.certificate);
      record.certificate = {
        sha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
        sha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
        publicKey: createPublicKey(spec.certificate.slice(spec.certificate.indexOf('-----BEGIN CERTIFICATE-----'))),
      };
      record.thumbprint = record.certificate.sha1;
    }
    this.#servicePrincipals.push(record);
    const { tenantId, clientId, oid, thumbprint } = record;
    return { tenantId, clientId, oid, ...(thumbprint ? { thumbprint } : {}) };
  }

  /** The managed identity a request selects, if one is registered. */
  findManagedIdentity(selector: ManagedIdentitySelector, value: string): EmulatedManagedIdentity | undefined {
    switch (selector) {
      case undefined:
        return this.#managedIdentities.find((mi) => mi.kind === 'system');
      case 'client_id':
        return this.#managedIdentities.find((mi) => sameId(mi.clientId, value));
      case 'object_id':
        return this.#managedIdentities.find((mi) => sameId(mi.objectId, value));
      case 'mi_res_id':
        return this.#managedIdentities.find((mi) => mi.kind === 'user' && sameId(mi.resourceId, value));
    }
  }

  /** The service principal of `clientId` in `tenant` (in any tenant for `common` / `organizations`). */
  findServicePrincipal(tenant: string, clientId: string): ServicePrincipalRecord | undefined {
    const multiTenant = isMultiTenantAlias(tenant);
    return this.#servicePrincipals.find(
      (p) => sameId(p.clientId, clientId) && (multiTenant || sameId(p.tenantId, tenant)),
    );
  }

  /** A tenant some service principal lives in, or `common` / `organizations`. */
  knownTenant(tenant: string): boolean {
    return isMultiTenantAlias(tenant) || this.#servicePrincipals.some((sp) => sameId(sp.tenantId, tenant));
  }
}

/** The DER bytes of the first certificate in a PEM text. */
function firstCertificateDer(pem: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new Error('The certificate is not a PEM certificate');
  return Buffer.from((match[1] ?? '').replace(/\s+/g, ''), 'base64');
}
