/** Records a provider's tokens (their description only: never the token). */
import type { EntraCredentialsProvider, TokenInfo } from '../../lib/index.js';
import { LATE_TOKEN_MS } from './settings.js';
import type { Window } from './util.js';

export class TokenTimeline {
  readonly tokens: TokenInfo[] = [];
  constructor(provider: EntraCredentialsProvider) {
    provider.on('tokenRefreshed', (info) => this.tokens.push(info));
  }

  /** The first token that outlives `expiresOn`, i.e. the one that should have replaced a token expiring then. */
  successorOf(expiresOn: number): TokenInfo | undefined {
    return this.tokens.find((t) => t.expiresOn > expiresOn);
  }

  /** Intervals in which the next token came too late to re-AUTH before the previous one expired. */
  lateWindows(): Window[] {
    const windows: Window[] = [];
    for (let i = 1; i < this.tokens.length; i++) {
      const previous = this.tokens[i - 1] as TokenInfo;
      const next = this.tokens[i] as TokenInfo;
      if (next.receivedAt > previous.expiresOn - LATE_TOKEN_MS) {
        windows.push({
          start: Math.min(previous.expiresOn, next.receivedAt) - 1_000,
          end: Math.max(previous.expiresOn, next.receivedAt),
          why: 'late token',
        });
      }
    }
    return windows;
  }
}
