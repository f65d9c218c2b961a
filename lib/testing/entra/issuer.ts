// JWT issuing: the tenant's RS256 signing key, the claims Entra puts in an access token, its JWKS document, and the
// count of tokens the endpoints issued.
import { randomUUID } from 'node:crypto';
import { createSigningKey, signJwt, type JwtClaims, type SigningKey } from '../jwt.js';

export class TokenIssuer {
  readonly signingKey: SigningKey = createSigningKey();
  /** Tokens issued by the endpoints (not by `sign`) since start or the last `resetCount()`. */
  issued = 0;
  readonly #tenantId: string;
  readonly #lifetimeSeconds: () => number;

  /** `lifetimeSeconds` is read for every token, so a change applies to the next one. */
  constructor(tenantId: string, lifetimeSeconds: () => number) {
    this.#tenantId = tenantId;
    this.#lifetimeSeconds = lifetimeSeconds;
  }

  /** Entra's standard claims (issuer of `base.tid` or the tenant, now, expiry, ids) under the claims of `base`. */
  claims(base: JwtClaims): JwtClaims {
    const now = Math.floor(Date.now() / 1000);
    const tid = typeof base.tid === 'string' ? base.tid : this.#tenantId;
    return {
      iss: `https://sts.windows.net/${tid}/`,
      iat: now,
      nbf: now,
      exp: now + this.#lifetimeSeconds(),
      idtyp: 'app',
      ver: '1.0',
      uti: randomUUID().replaceAll('-', ''),
      jti: randomUUID(),
      ...base,
    };
  }

  /** Signs `claims` without counting a token as issued. */
  sign(claims: JwtClaims): string {
    return signJwt(claims, this.signingKey);
  }

  /** Signs `claims` as a token an endpoint hands out, and counts it. */
  issue(claims: JwtClaims): string {
    const token = signJwt(claims, this.signingKey);
    this.issued += 1;
    return token;
  }

  /** The JWKS document with the public half of the signing key. */
  jwks(): { keys: Record<string, unknown>[] } {
    return {
      keys: [
        { ...this.signingKey.publicKey.export({ format: 'jwk' }), kid: this.signingKey.kid, use: 'sig', kty: 'RSA' },
      ],
    };
  }
}
