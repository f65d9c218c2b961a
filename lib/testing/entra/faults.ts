// Fault injection: the fault in effect on each endpoint (with its remaining count), what a faulted request gets, and
// the requests a `hang` fault holds open.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { appServiceError, entraStatusError, send, statusMessage } from './responses.js';
import type { EmulatorEndpoint, EntraFault } from './types.js';

/** The endpoints a fault applies to: its own, or both. */
export function endpointsOf(fault: EntraFault): EmulatorEndpoint[] {
  return fault.endpoint ? [fault.endpoint] : ['managed-identity', 'authority'];
}

interface ActiveFault {
  fault: EntraFault;
  remaining: number;
}

/** The faults in effect, per endpoint, and the requests held open by `hang`. */
export class FaultTable {
  readonly #faults = new Map<EmulatorEndpoint, ActiveFault>();
  readonly #hung = new Set<ServerResponse>();

  /** Puts `fault` in effect on `endpoint`, replacing the one there; `times` limits how many requests it takes. */
  set(endpoint: EmulatorEndpoint, fault: EntraFault): void {
    this.#faults.set(endpoint, {
      fault,
      remaining: 'times' in fault && fault.times !== undefined ? fault.times : Infinity,
    });
  }

  delete(endpoint: EmulatorEndpoint): void {
    this.#faults.delete(endpoint);
  }

  /** Forgets every fault and every held request (without destroying them). */
  clear(): void {
    this.#faults.clear();
    this.#hung.clear();
  }

  /**
   * The fault that decides the fate of a request arriving now on `endpoint`, counting it against `times`. `down` is
   * not taken: a down server gets no requests.
   */
  take(endpoint: EmulatorEndpoint): EntraFault | undefined {
    const active = this.#faults.get(endpoint);
    if (!active || active.fault.kind === 'down' || active.remaining <= 0) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) this.#faults.delete(endpoint);
    return active.fault;
  }

  /** Holds a request of a `hang` fault until its client goes away or `destroyHung()`. */
  hold(res: ServerResponse): void {
    this.#hung.add(res);
    res.on('close', () => this.#hung.delete(res));
  }

  /** Destroys the sockets of held requests (their clients see the connection reset). */
  destroyHung(): void {
    for (const res of this.#hung) res.req.socket.destroy();
    this.#hung.clear();
  }

  /** Requests held open whose client has not gone away. */
  get hungCount(): number {
    return this.#hung.size;
  }
}

/** Answers (or does not answer) a request the way `fault` says. */
export function applyFault(
  endpoint: EmulatorEndpoint,
  fault: EntraFault,
  authorityHost: string,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  switch (fault.kind) {
    case 'hang':
      return;
    case 'reset':
      req.socket.destroy();
      return;
    case 'status': {
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) headers['Retry-After'] = String(fault.retryAfterSeconds);
      else if (fault.retryAfterDate !== undefined) headers['Retry-After'] = fault.retryAfterDate.toUTCString();
      const body =
        fault.body ??
        (endpoint === 'managed-identity'
          ? appServiceError(fault.status, statusMessage(fault.status))
          : entraStatusError(authorityHost, fault.status, req));
      send(res, fault.status, body, headers);
      return;
    }
    case 'down':
      req.socket.destroy();
      return;
  }
}
