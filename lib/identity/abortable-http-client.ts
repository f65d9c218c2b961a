import {
  createDefaultHttpClient,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { currentRequestSignal } from '../manager/request-signal.js';

let sharedDefault: HttpClient | undefined;

/**
 * The HTTP client the library gives the credentials it creates: `inner` (default: @azure/core-rest-pipeline's
 * default client, one per process), with every request tied to the abort signal of the token request it is made
 * for. When the token manager abandons a request (timeout, stop, dispose), the HTTP request is aborted and its
 * socket destroyed, even where the credential does not pass the signal on itself (ManagedIdentityCredential
 * 4.x does not): nothing is left to keep the process alive.
 */
export function abortableHttpClient(inner?: HttpClient): HttpClient {
  const client = inner ?? (sharedDefault ??= createDefaultHttpClient());
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const signal = currentRequestSignal();
      if (!signal) return await client.sendRequest(request);
      const link = linkSignals(request.abortSignal, signal);
      request.abortSignal = link.signal;
      try {
        return await client.sendRequest(request);
      } finally {
        link.release();
      }
    },
  };
}

type SignalLike = NonNullable<PipelineRequest['abortSignal']>;

/**
 * A signal that aborts when either does. `release` removes its listeners: the credential may keep its own signals
 * long after the request (IdentityClient does), and they must not keep the token request's alive.
 */
function linkSignals(own: SignalLike | undefined, tokenRequest: AbortSignal): { signal: AbortSignal; release(): void } {
  const linked = new AbortController();
  const release = () => {
    own?.removeEventListener('abort', abort);
    tokenRequest.removeEventListener('abort', abort);
  };
  const abort = () => {
    release();
    linked.abort(tokenRequest.aborted ? tokenRequest.reason : undefined);
  };
  if (own?.aborted || tokenRequest.aborted) abort();
  else {
    own?.addEventListener('abort', abort);
    tokenRequest.addEventListener('abort', abort);
  }
  return { signal: linked.signal, release };
}
