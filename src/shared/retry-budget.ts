/** Settings of a {@link RetryBudget}; the defaults are gRPC's `retryThrottling` example values. */
export interface RetryBudgetOptions {
  /** Tokens a host starts with and can hold. Default 10. */
  maxTokens?: number
  /** Tokens a success gives back. Default 0.1: about one retry per ten successes. */
  tokenRatio?: number
}

/**
 * gRPC-style retry throttling, one token bucket per host: a failed attempt
 * takes a token, a success gives back `tokenRatio`, and retries are allowed
 * only while the bucket is more than half full. When a service fails more
 * than about 1 request in 10, clients stop piling retries onto it and let
 * the first answer through.
 *
 * @example
 * const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.1 })
 * budget.onFailure('api.example.com')
 * budget.canRetry('api.example.com') // true until 5 more failures
 */
export class RetryBudget {
  readonly #tokens = new Map<string, number>()
  readonly #max: number
  readonly #ratio: number

  constructor({ maxTokens = 10, tokenRatio = 0.1 }: RetryBudgetOptions = {}) {
    if (!(maxTokens > 0)) throw new TypeError('hono-once/client: budget.maxTokens must be > 0')
    if (!(tokenRatio > 0)) throw new TypeError('hono-once/client: budget.tokenRatio must be > 0')
    this.#max = maxTokens
    this.#ratio = tokenRatio
  }

  /** Whether a retry to `host` may be sent now. */
  canRetry(host: string): boolean {
    return this.tokens(host) > this.#max / 2
  }

  /** Records a failed attempt (retryable status, timeout or network error). */
  onFailure(host: string): void {
    this.#tokens.set(host, Math.max(0, this.tokens(host) - 1))
  }

  /** Records an attempt that got a final answer. */
  onSuccess(host: string): void {
    this.#tokens.set(host, Math.min(this.#max, this.tokens(host) + this.#ratio))
  }

  /** Tokens left for `host`. */
  tokens(host: string): number {
    return this.#tokens.get(host) ?? this.#max
  }
}
