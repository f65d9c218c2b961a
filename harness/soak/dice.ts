/** The soak's randomness: one seeded generator, so that the fault schedule of a seed is reproducible. */

/** Small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Dice {
  readonly #random: () => number;

  constructor(readonly seed: number) {
    this.#random = prng(seed);
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#random() * (max - min + 1));
  }

  /** A number in [min, max). */
  between(min: number, max: number): number {
    return min + this.#random() * (max - min);
  }

  /** Draws from `kinds`, each kind once per round, in a random order: a short run sees every kind. */
  deck<T>(kinds: readonly T[]): () => T {
    let cards: T[] = [];
    return () => {
      if (cards.length === 0) cards = [...kinds].sort(() => this.#random() - 0.5);
      return cards.pop() as T;
    };
  }
}
