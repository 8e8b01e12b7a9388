import * as z from 'zod/mini'

/**
 * What `POST /__origin/faults` accepts; each field changes one fault and
 * leaves the others as they are. `reset: true` clears every fault first.
 */
export const FaultsInput = z.strictObject({
  reset: z.optional(z.boolean()),
  /** Every request's connection is reset on arrival. */
  down: z.optional(z.boolean()),
  /** Added to every request, ms. */
  latencyMs: z.optional(z.number().check(z.int(), z.gte(0), z.lte(120_000))),
  /** A random share `p` of requests take `ms` longer; `seed` makes the draw reproducible. Null turns it off. */
  tail: z.optional(
    z.nullable(
      z.strictObject({
        p: z.number().check(z.gte(0), z.lte(1)),
        ms: z.number().check(z.int(), z.gte(0), z.lte(120_000)),
        seed: z.optional(z.number().check(z.int())),
      }),
    ),
  ),
  /** The next n requests answer 503 without being applied. */
  failNext: z.optional(z.number().check(z.int(), z.gte(0), z.lte(1_000_000))),
  /** The next n requests are applied and committed, then their connection is reset before the answer. */
  dropAfterApply: z.optional(z.number().check(z.int(), z.gte(0), z.lte(1_000_000))),
  /** Requests wait, unanswered, until this is turned off; then they go on. */
  hang: z.optional(z.boolean()),
  /** Deposits add one extra cent: a replica that diverges. */
  wrongBalance: z.optional(z.boolean()),
})

/** The body of `POST /__origin/faults`. */
export type FaultsUpdate = z.infer<typeof FaultsInput>

/** The fault state, as `GET /__origin/stats` reports it. */
export interface FaultState {
  down: boolean
  latencyMs: number
  tail: { p: number; ms: number; seed?: number | undefined } | null
  failNext: number
  dropAfterApply: number
  hang: boolean
  wrongBalance: boolean
}

/**
 * The fault switches of one origin, driven over HTTP by tests that run in
 * workerd and can reach the origin only through its sockets.
 *
 * @example
 * const faults = new Faults(20)
 * faults.update({ failNext: 2 })
 * faults.takeFailure() // true, true, then false
 */
export class Faults {
  #state: FaultState
  #random: () => number = Math.random
  #unhang: (() => void) | undefined
  #hung: Promise<void> | undefined

  constructor(readonly baseLatencyMs = 0) {
    this.#state = Faults.#initial(baseLatencyMs)
  }

  static #initial(latencyMs: number): FaultState {
    return { down: false, latencyMs, tail: null, failNext: 0, dropAfterApply: 0, hang: false, wrongBalance: false }
  }

  /** The current switches. */
  get state(): Readonly<FaultState> {
    return this.#state
  }

  /**
   * Applies a parsed update.
   *
   * @param update - the fields to change
   * @returns the new state
   */
  update(update: FaultsUpdate): Readonly<FaultState> {
    if (update.reset) {
      this.#state = Faults.#initial(this.baseLatencyMs)
      this.#setHang(false)
      this.#random = Math.random
    }
    const { reset: _reset, tail, hang, ...rest } = update
    Object.assign(this.#state, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)))
    if (tail !== undefined) {
      this.#state.tail = tail
      this.#random = tail?.seed === undefined ? Math.random : mulberry32(tail.seed)
    }
    if (hang !== undefined) this.#setHang(hang)
    return this.#state
  }

  /** How long this request is delayed: the latency, plus the tail when the draw says so. */
  delayMs(): number {
    const { latencyMs, tail } = this.#state
    return latencyMs + (tail && this.#random() < tail.p ? tail.ms : 0)
  }

  /** Resolves when requests may go on (at once unless `hang` is on). */
  untilUnhung(): Promise<void> {
    return this.#hung ?? Promise.resolve()
  }

  /** True (and counts down) when this request must answer 503. */
  takeFailure(): boolean {
    if (this.#state.failNext <= 0) return false
    this.#state.failNext--
    return true
  }

  /** True (and counts down) when this request's connection must be reset after it is applied. */
  takeDrop(): boolean {
    if (this.#state.dropAfterApply <= 0) return false
    this.#state.dropAfterApply--
    return true
  }

  #setHang(on: boolean): void {
    this.#state.hang = on
    if (on && !this.#hung) this.#hung = new Promise((resolve) => (this.#unhang = resolve))
    if (!on && this.#hung) {
      this.#unhang?.()
      this.#hung = undefined
      this.#unhang = undefined
    }
  }
}

/** A small seeded PRNG, so a tail fault's draws repeat from run to run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
