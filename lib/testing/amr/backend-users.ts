// The backend side of authentication: one ACL user per token `oid` on the real redis-server, with a password derived
// from a per-emulator random key (never the token), created over an admin connection.
import { createHmac, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { AdminCredentials } from '../redis-server.js';

/** A backend user that never exists: AUTH with it always gets WRONGPASS. */
export const INVALID_USER = 'amr-emulator-invalid-user';

/** The ACL users of one emulator on its backend, and the admin connection that creates them. */
export class BackendUsers {
  readonly #backend: { host: string; port: number };
  readonly #credentials: AdminCredentials;
  readonly #secretKey = randomBytes(32);
  #admin: Redis | undefined;
  #stopped = false;

  constructor(backend: { host: string; port: number }, credentials: AdminCredentials) {
    this.#backend = backend;
    this.#credentials = credentials;
  }

  /**
   * The admin connection to the backend, made on demand and never reconnecting by itself (a reconnect loop towards a
   * stopped backend would keep the test process alive); a new one is made after the backend restarted.
   */
  #adminClient(): Redis {
    if (this.#admin && this.#admin.status !== 'end') return this.#admin;
    const admin = new Redis({
      host: this.#backend.host,
      port: this.#backend.port,
      username: this.#credentials.username,
      password: this.#credentials.password,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      disableClientInfo: true,
      // AMR checks tokens in front of the server, also while a restarted server loads its dataset (redis-server
      // accepts ACL SETUSER then): no ready check, which would hold the command until the load is over.
      enableReadyCheck: false,
      connectionName: 'amr-emulator-admin',
    });
    admin.on('error', () => {
      // The backend may be down on purpose (restart tests); the command reports the failure.
    });
    this.#admin = admin;
    return admin;
  }

  /** The backend password of the ACL user for `oid` (derived from a per-emulator random key, never the token). */
  secretFor(oid: string): string {
    return createHmac('sha256', this.#secretKey).update(oid).digest('base64url');
  }

  /**
   * Makes sure the backend has an ACL user for `oid`. Idempotent, and run for every good AUTH, so users lost in a
   * backend restart come back. `>secret` adds a password, so emulators sharing a backend do not step on each other.
   */
  async ensure(oid: string): Promise<void> {
    // Twice: the first attempt may hit an admin connection whose backend just went away (restart) unnoticed.
    for (let attempt = 0; attempt < 2 && !this.#stopped; attempt += 1) {
      try {
        await this.#adminClient().call('ACL', 'SETUSER', oid, 'on', `>${this.secretFor(oid)}`, '~*', '&*', '+@all');
        return;
      } catch {
        this.#admin?.disconnect();
        this.#admin = undefined;
      }
    }
    // Otherwise the AUTH that follows fails with WRONGPASS, which is what a client would see.
  }

  /** Closes the admin connection; no user is created afterwards. */
  stop(): void {
    this.#stopped = true;
    this.#admin?.disconnect();
    this.#admin = undefined;
  }
}
