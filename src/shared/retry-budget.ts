/** Settings of a {@link RetryBudget}; the defaults are gRPC's `retryThrottling` example values, plus a refill. */
export interface RetryBudgetOptions {
  /** Tokens a host starts with and can hold. Default 10. */
  maxTokens?: number
  /** Tokens a success gives back. Default 0.1: about one retry per ten successes. */
  tokenRatio?: number
  /**
   * Tokens a host earns back per second, whatever it is sent. Default 0.5: a host that failed every attempt
   * is retried about once every two seconds, and one emptied by an outage and sent nothing since (a standby
   * origin that only gets retries) may be retried again 10 s later. gRPC's throttle has no such refill: there,
   * a host's tokens come back only with its own successes, which a host that is only ever retried never has.
   */
  refillPerSecond?: number
}

/**
 * gRPC-style retry throttling, one token bucket per host: a failed attempt
 * takes a token, a success gives back `tokenRatio`, time gives back
 * `refillPerSecond`, and retries are allowed only while the bucket is more
 * than half full. When a service fails more than about 1 request in 10,
 * clients stop piling retries onto it and let the first answer through.
 *
 * @example
 * const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.1 })
 * budget.onFailure('api.example.com')
 * budget.canRetry('api.example.com') // true until 5 more failures (in quick succession)
 */
export class RetryBudget {
  /** Per host: tokens as of `at` (epoch ms). */
  readonly #tokens = new Map<string, { tokens: number; at: number }>()
  readonly #max: number
  readonly #ratio: number
  readonly #refill: number

  constructor({ maxTokens = 10, tokenRatio = 0.1, refillPerSecond = 0.5 }: RetryBudgetOptions = {}) {
    if (!(maxTokens > 0)) throw new TypeError('hono-once/client: budget.maxTokens must be > 0')
    if (!(tokenRatio > 0)) throw new TypeError('hono-once/client: budget.tokenRatio must be > 0')
    if (!(refillPerSecond >= 0) || !Number.isFinite(refillPerSecond)) throw new TypeError('hono-once/client: budget.refillPerSecond must be a finite number ≥ 0')
    this.#max = maxTokens
    this.#ratio = tokenRatio
    this.#refill = refillPerSecond
  }

  /** Whether a retry to `host` may be sent now. */
  canRetry(host: string): boolean {
    return this.tokens(host) > this.#max / 2
  }

  /** Records a failed attempt (retryable status, timeout or network error). */
  onFailure(host: string): void {
    this.#set(host, this.tokens(host) - 1)
  }

  /** Records an attempt that got a final answer. */
  onSuccess(host: string): void {
    this.#set(host, this.tokens(host) + this.#ratio)
  }

  /** Tokens left for `host` now. */
  tokens(host: string): number {
    const held = this.#tokens.get(host)
    if (!held) return this.#max
    return Math.min(this.#max, held.tokens + (Math.max(0, Date.now() - held.at) / 1000) * this.#refill)
  }

  #set(host: string, tokens: number): void {
    const clamped = Math.max(0, Math.min(this.#max, tokens))
    // A full bucket is the default: forgetting it keeps the map to the hosts that failed lately.
    if (clamped >= this.#max) this.#tokens.delete(host)
    else this.#tokens.set(host, { tokens: clamped, at: Date.now() })
  }
}
