import { RetryBudget } from './retry-budget.js'
import type { BreakerOptions } from './types.js'

/** Where one origin's breaker stands. */
export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * A circuit breaker for one origin: `failures` consecutive failures open
 * it; an open origin is skipped for `cooldownMs`; then one request may probe
 * it (half-open): a success closes it, a failure opens it again.
 *
 * @example
 * const b = new Breaker({ failures: 3, cooldownMs: 5000 })
 * if (b.allow(Date.now())) { try { await send(); b.success() } catch { b.failure(Date.now()) } }
 */
export class Breaker {
  #state: BreakerState = 'closed'
  #failures = 0
  #openUntil = 0
  readonly #threshold: number
  readonly #cooldownMs: number

  constructor({ failures = 5, cooldownMs = 10_000 }: BreakerOptions = {}) {
    this.#threshold = failures
    this.#cooldownMs = cooldownMs
  }

  get state(): BreakerState {
    return this.#state
  }

  /** Whether a request may go to this origin now; claims the probe when the cooldown is over. */
  allow(now: number): boolean {
    if (this.#state === 'closed') return true
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#state = 'half-open'
      return true
    }
    return false
  }

  /** Whether {@link allow} would say yes, without claiming anything. */
  available(now: number): boolean {
    return this.#state === 'closed' || (this.#state === 'open' && now >= this.#openUntil)
  }

  success(): void {
    this.#state = 'closed'
    this.#failures = 0
  }

  /** The probe was cancelled (a hedge it lost, a client gone): neither success nor failure, let another probe go. */
  aborted(now: number): void {
    if (this.#state === 'half-open') {
      this.#state = 'open'
      this.#openUntil = now
    }
  }

  failure(now: number): void {
    this.#failures++
    if (this.#state === 'half-open' || this.#failures >= this.#threshold) {
      this.#state = 'open'
      this.#openUntil = now + this.#cooldownMs
    }
  }
}

/** Recent latencies of one origin, for `hedgeAfterMs: 'auto'` and the status page. */
export class LatencyWindow {
  readonly #samples: number[] = []
  #next = 0
  constructor(readonly size = 200) {}

  add(ms: number): void {
    if (this.#samples.length < this.size) this.#samples.push(ms)
    else this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % this.size
  }

  get count(): number {
    return this.#samples.length
  }

  /** The latest `n` samples, oldest first. */
  recent(n: number): number[] {
    const ordered = this.#samples.length < this.size ? this.#samples : [...this.#samples.slice(this.#next), ...this.#samples.slice(0, this.#next)]
    return ordered.slice(-n)
  }

  /**
   * The `p`th percentile (0–100) of the window by the nearest-rank method
   * (the smallest sample with at least p% of the samples at or below it),
   * or undefined while it holds fewer than `min` samples.
   */
  percentile(p: number, min = 20): number | undefined {
    if (this.#samples.length < min) return undefined
    const sorted = [...this.#samples].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
  }
}

/** What the status page shows of one origin. */
export interface OriginHealthReport {
  name: string
  breaker: BreakerState
  p50Ms: number | undefined
  p95Ms: number | undefined
  samples: number
}

/**
 * Health of an origin group as one isolate sees it: a breaker, a latency
 * window, a `Retry-After` embargo and a retry throttle per origin. It lives
 * in isolate memory on purpose: it is read
 * on every attempt, so a round trip to a Durable Object per read would cost
 * more than it saves; each isolate learns an outage from its own failures
 * within a few requests, and forgets it when evicted.
 *
 * @example
 * const health = new OriginHealth({ failures: 5, cooldownMs: 10_000 })
 * health.succeeded('eu', 12)
 */
export class OriginHealth {
  readonly #breakers = new Map<string, Breaker>()
  readonly #latency = new Map<string, LatencyWindow>()
  readonly #notBefore = new Map<string, number>()
  /**
   * gRPC-style retry throttling per origin: the client's budget, with each origin as a host. Per origin, not per
   * group: a retry to a healthy origin after a dead or flapping one failed is the failover the group is for, and
   * must not be held back by the other's failures; when every origin fails, every budget runs low and retries stop.
   */
  readonly #budget = new RetryBudget()

  constructor(private readonly breaker: BreakerOptions = {}) {}

  /**
   * Whether an attempt after a request's first (a retry or a hedge) may go
   * to `name`: only while more than half its tokens are left, so that when
   * more than about one attempt in ten at it fails, an outage is not multiplied.
   */
  canRetry(name: string): boolean {
    return this.#budget.canRetry(name)
  }

  breakerOf(name: string): Breaker {
    let b = this.#breakers.get(name)
    if (!b) this.#breakers.set(name, (b = new Breaker(this.breaker)))
    return b
  }

  latencyOf(name: string): LatencyWindow {
    let w = this.#latency.get(name)
    if (!w) this.#latency.set(name, (w = new LatencyWindow()))
    return w
  }

  /** Whether `name` may be tried now without claiming a probe: breaker not open and no `Retry-After` pending. */
  available(name: string, now: number): boolean {
    return (this.#notBefore.get(name) ?? 0) <= now && this.breakerOf(name).available(now)
  }

  /**
   * Claims `name` for an attempt (the half-open probe, if due).
   *
   * @param honourRetryAfter - false where the origin must be sent the request whatever it asked of other requests
   *   (a replica: each write is its to apply, and the request honours the wait within its own deadline)
   */
  claim(name: string, now: number, honourRetryAfter = true): boolean {
    return (!honourRetryAfter || (this.#notBefore.get(name) ?? 0) <= now) && this.breakerOf(name).allow(now)
  }

  /** An attempt at `name` got an answer: it works, and whatever `Retry-After` it gave before is over. */
  succeeded(name: string, ms: number): void {
    this.#notBefore.delete(name)
    this.breakerOf(name).success()
    this.latencyOf(name).add(ms)
    this.#budget.onSuccess(name)
  }

  /** An attempt at `name` was aborted before it ended. */
  aborted(name: string, now: number): void {
    this.breakerOf(name).aborted(now)
  }

  failed(name: string, now: number, retryAfterMs?: number): void {
    this.breakerOf(name).failure(now)
    this.#budget.onFailure(name)
    if (retryAfterMs !== undefined) this.#notBefore.set(name, now + retryAfterMs)
  }

  report(names: string[]): OriginHealthReport[] {
    return names.map((name) => {
      const w = this.latencyOf(name)
      return { name, breaker: this.breakerOf(name).state, p50Ms: w.percentile(50, 1), p95Ms: w.percentile(95, 1), samples: w.count }
    })
  }
}
