/**
 * The chaos schedule: token lifetimes redrawn every 8-20 s, a token-service fault every 3-8 s and a server fault every
 * 8-18 s (each kind once per round, in random order), until the quiet time before the end of the run. Records every
 * fault, the windows in which failures are expected, and how long the clients took to recover from each outage of
 * the token service.
 */
import type { EntraCredentialsProvider } from '../../lib/index.js';
import type { Dice } from './dice.js';
import {
  drawTokenFault,
  injectServerFault,
  SERVER_FAULT_KINDS,
  sideOf,
  TOKEN_FAULT_KINDS,
  type TokenFaultKind,
} from './faults.js';
import type { Lane } from './lane.js';
import type { FaultRecord, RecoveryReport } from './report.js';
import type { Servers } from './servers.js';
import { LIFETIMES_S, SETTLE_MS } from './settings.js';
import { describeError, pause, persist, type Window } from './util.js';

/** An outage of the token service: when, and when the tokens and every lane came back after it. */
interface Down {
  start: number;
  clearedAt: number;
  probes: Array<{ readonly at: number | undefined }>;
  tokenBack: Map<string, number>;
}

export class Chaos {
  readonly faults: FaultRecord[] = [];
  /** Token-service faults, from injection to clearing. */
  readonly tokenFaultWindows: Window[] = [];
  /** Server restarts and kills, by the side whose clients they hit. */
  readonly serverWindows: Record<'standalone' | 'cluster', Window[]> = { standalone: [], cluster: [] };
  readonly lifetimesUsed: Set<number>;
  /** When the chaos started, epoch ms (0 before). */
  start = 0;
  readonly #downs: Down[] = [];
  readonly #abort = new AbortController();

  /** Read through a call: an `await` may have stopped the run, which a narrowed `signal.aborted` would not show. */
  #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  constructor(
    readonly servers: Servers,
    readonly lanes: readonly Lane[],
    readonly providers: Record<'standalone' | 'cluster', EntraCredentialsProvider>,
    readonly dice: Dice,
    readonly log: (line: string) => void,
  ) {
    this.lifetimesUsed = new Set([servers.entra.tokenLifetimeSeconds]);
  }

  /**
   * Runs the chaos until SETTLE_MS before the end of a run of `minutes`, then brings every server back and clears every
   * fault. Resolves with the time the last fault was undone (epoch ms).
   */
  async run(minutes: number): Promise<number> {
    this.start = Date.now();
    const end = this.start + minutes * 60_000 - SETTLE_MS;
    this.log(`soak: chaos for ${((end - this.start) / 1000).toFixed(0)} s, then ${SETTLE_MS / 1000} s quiet`);
    const chaos = Promise.all([this.#lifetimeLoop(end), this.#tokenLoop(end), this.#serverLoop(end)]);
    const stopTimer = setTimeout(() => this.#abort.abort(), Math.max(0, end - Date.now()));
    await chaos;
    clearTimeout(stopTimer);
    this.#abort.abort();
    await this.#restore();
    const quietFrom = Date.now();
    this.log(`soak: chaos over after ${((quietFrom - this.start) / 1000).toFixed(0)} s; settling`);
    return quietFrom;
  }

  /** Stops every loop at its next step. */
  abort(): void {
    this.#abort.abort();
  }

  /** Leaves everything up, whatever the chaos was doing when it stopped. */
  async #restore(): Promise<void> {
    const { entra, redis, cluster } = this.servers;
    await persist(() => entra.clearFault(), 'the token service to listen again');
    entra.destroyHungRequests();
    if (!redis.running) await persist(() => redis.start(), 'redis-server to start');
    for (const [index, node] of cluster.nodes.entries()) {
      if (!node.running) await persist(() => cluster.restartNode(index), `cluster node ${index} to restart`);
    }
    await cluster.waitForHealthy(30_000);
  }

  #record(kind: string, detail: string, start: number): void {
    this.faults.push({ kind, detail, at: start - this.start, durationMs: Date.now() - start });
    this.log(
      `  ${((start - this.start) / 1000).toFixed(1)} s: ${kind} (${detail}), ${((Date.now() - start) / 1000).toFixed(1)} s`,
    );
  }

  async #lifetimeLoop(end: number): Promise<void> {
    const { signal } = this.#abort;
    const { entra } = this.servers;
    while (!signal.aborted && Date.now() < end) {
      await pause(this.dice.between(8_000, 20_000), signal);
      if (this.#stopped()) return;
      entra.tokenLifetimeSeconds = LIFETIMES_S[this.dice.int(0, LIFETIMES_S.length - 1)] as number;
      this.lifetimesUsed.add(entra.tokenLifetimeSeconds);
    }
  }

  async #tokenLoop(end: number): Promise<void> {
    const { signal } = this.#abort;
    const next = this.dice.deck(TOKEN_FAULT_KINDS);
    while (!signal.aborted) {
      await pause(this.dice.between(3_000, 8_000), signal);
      if (this.#stopped() || Date.now() >= end) return;
      await this.#tokenFault(next());
    }
  }

  /** Injects one token-service fault, holds it, clears it, and for an outage starts measuring the recovery. */
  async #tokenFault(kind: TokenFaultKind): Promise<void> {
    const { signal } = this.#abort;
    const { entra } = this.servers;
    const start = Date.now();
    const { fault, holdMs, detail } = drawTokenFault(kind, this.dice);
    await entra.setFault(fault);
    await pause(holdMs, signal);
    const cutShort = signal.aborted;
    entra.destroyHungRequests();
    await persist(() => entra.clearFault(), 'the token service to listen again');
    const clearedAt = Date.now();
    this.tokenFaultWindows.push({ start, end: clearedAt, why: kind });
    if (kind === 'down' && !signal.aborted) this.#watchRecovery(start, clearedAt);
    this.#record(`token service ${kind}`, cutShort ? `${detail} (cut short: the chaos ended)` : detail, start);
  }

  /** Notes when each provider gets its next token and each lane its next success after an outage cleared at `clearedAt`. */
  #watchRecovery(start: number, clearedAt: number): void {
    const tokenBack = new Map<string, number>();
    for (const [name, provider] of Object.entries(this.providers)) {
      provider.once('tokenRefreshed', () => tokenBack.set(name, Date.now()));
    }
    this.#downs.push({ start, clearedAt, probes: this.lanes.map((lane) => lane.probe(clearedAt)), tokenBack });
  }

  async #serverLoop(end: number): Promise<void> {
    const { signal } = this.#abort;
    const next = this.dice.deck(SERVER_FAULT_KINDS);
    while (!signal.aborted) {
      await pause(this.dice.between(8_000, 18_000), signal);
      if (this.#stopped() || Date.now() >= end) return;
      const kind = next();
      const start = Date.now();
      try {
        const fault = await injectServerFault(kind, this.servers, this.dice);
        this.serverWindows[fault.side].push({ start, end: Date.now(), why: fault.why });
        this.#record(fault.kind, fault.detail, start);
      } catch (error) {
        this.log(`  server fault ${kind} failed: ${describeError(error)}`);
        this.serverWindows[sideOf(kind)].push({ start, end: Date.now(), why: `${kind} (failed)` });
      }
    }
  }

  /** Recovery after each outage of the token service: first token of both providers, and every lane writing again. */
  recovery(): RecoveryReport[] {
    return this.#downs.map((down) => {
      const back = [...down.tokenBack.values()];
      const lanesBack = down.probes.map((p) => p.at ?? Number.NaN);
      return {
        at: down.start - this.start,
        downMs: down.clearedAt - down.start,
        tokenBackMs: back.length === 2 ? Math.max(...back) - down.clearedAt : Number.NaN,
        lanesBackMs: Math.max(...lanesBack) - down.clearedAt,
      };
    });
  }
}
