import type { RetryBudget } from './retry-budget.js'

/** Why an attempt is retried. */
export type RetryReason = 'network' | 'timeout' | 'in-flight' | 'status' | 'retryable-problem'

/** What {@link OnceFetchOptions.onRetry} is told before each retry. */
export interface RetryInfo {
  /** The attempt that failed (1 for the first). */
  attempt: number
  /** Wait before the next attempt, in milliseconds. */
  delayMs: number
  reason: RetryReason
  /** The idempotency key every attempt of this call carries (undefined for safe methods). */
  key: string | undefined
  /** The failed answer, when there was one. Its body is unread. */
  response?: Response
  /** The error, for network errors and timeouts. */
  error?: unknown
}

/** How a call was answered, from {@link onceInfo}. */
export interface OnceInfo {
  key: string | undefined
  /** How many attempts the call took; the last one answered. */
  attempts: number
  /** The server replayed a stored reply (`Idempotent-Replayed: true`). */
  replayed: boolean
}

/** Options of {@link createOnceFetch} and {@link onceFetch}. */
export interface OnceFetchOptions {
  /** Most retries after the first attempt. Default 4 (5 attempts in all, gRPC's cap). */
  retries?: number
  /** Timeout of one attempt. Default 10000 ms. */
  timeoutMs?: number
  /** Time for the whole call, retries and waits included. Default 60000 ms. */
  deadlineMs?: number
  /** First backoff cap; doubles per retry (full jitter). Default 100 ms. */
  baseDelayMs?: number
  /** Largest backoff cap, and largest `Retry-After` honoured. Default 10000 ms. */
  maxDelayMs?: number
  /** Methods that change state: they get an Idempotency-Key. Default POST, PUT, PATCH, DELETE. */
  methods?: string[]
  /** Makes a key per logical call. Default: UUIDv7. A key the caller set in the headers wins. */
  generateKey?: () => string
  /** Retry throttling per host, or false for none. Default: one budget (10 tokens, 0.1 back per success) shared by every once fetch in the process. */
  budget?: RetryBudget | false
  /** Called before each retry. */
  onRetry?: (info: RetryInfo) => void
  /** The transport. Default: the global `fetch`. */
  fetch?: (request: Request) => Promise<Response>
}

/**
 * Thrown when a call ends without an answer: every attempt failed, or the deadline passed.
 *
 * @example
 * try { await onceFetch(url, { method: 'POST' }) } catch (e) {
 *   if (e instanceof OnceFetchError) console.log(e.reason, e.attempts, e.key) // 'timeout', 5, '0193…'
 * }
 */
export class OnceFetchError extends Error {
  override readonly name = 'OnceFetchError'
  constructor(
    message: string,
    readonly reason: 'network' | 'timeout' | 'deadline',
    readonly attempts: number,
    readonly key: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
