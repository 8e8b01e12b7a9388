/**
 * A small seeded PRNG (mulberry32), so a chaos run's schedule can be replayed from its seed.
 *
 * @param seed - any integer
 * @returns helpers drawing from one stream
 * @example
 * const rnd = seeded(42)
 * rnd.int(1, 6) // a die roll
 */
export function seeded(seed: number) {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    /** [0, 1) */
    next,
    /** An integer in [min, max]. */
    int: (min: number, max: number): number => min + Math.floor(next() * (max - min + 1)),
    /** True with probability p. */
    chance: (p: number): boolean => next() < p,
    /** One element of a non-empty list. */
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!,
  }
}
