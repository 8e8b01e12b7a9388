import type { RetryBudget } from '../shared/retry-budget.js'

/** Why an attempt is retried. */
export type RetryReason = 'network' | 'timeout' | 'in-flight' | 'status' | 'retryable-problem'

/** What {@link OnceFetchOptions.onRetry} is told before each retry. */
export interface RetryInfo {
  /** The attempt that failed (1 for the first). */
  attempt: number
  /** Wait before the next attempt, in milliseconds. */
  delayMs: number
  reason: RetryReason
  /** The bare idempotency key every attempt of this call carries (sent as `"key"`); undefined for a call without one. */
  key: string | undefined
  /** The failed answer, when there was one. Its body is unread: yours to read (the client then leaves it alone). */
  response?: Response
  /** The error, for network errors and timeouts. */
  error?: unknown
}

/** How a call was answered, from {@link onceInfo}. */
export interface OnceInfo {
  /**
   * The bare idempotency key (`0193…`, never `"0193…"`): the header carries it
   * as an sf-string, and a key you set yourself, quoted or bare, is read back
   * to the bare key. Undefined for a call without a key. A header that is
   * neither an sf-string nor a bare key is sent unchanged (the server answers
   * 400) and reported as it was set.
   */
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
  /**
   * Methods that change state: they get an Idempotency-Key (any case: `'patch'` is PATCH). Default POST, PUT,
   * PATCH, DELETE. A call without a key is retried only when its method is idempotent (RFC 9110 §9.2.2:
   * GET, HEAD, OPTIONS, TRACE, PUT, DELETE); any other method without a key gets one attempt.
   */
  methods?: readonly string[]
  /** Makes a key per logical call. Default: UUIDv7. A key the caller set in the headers wins. */
  generateKey?: () => string
  /**
   * Retry throttling per host, or false for none. Default: one budget (10 tokens, 0.1 back per success, 0.5 per second) shared
   * by every once fetch in the process. A `409` with `Retry-After` (the original still in flight) is the server
   * asking to wait, not a failure: it takes no token and is retried even when the budget is low.
   */
  budget?: RetryBudget | false
  /** Called before each retry; a throw is logged, and the retry goes on. */
  onRetry?: (info: RetryInfo) => void
  /**
   * The transport. Default: the global `fetch`. A method needs its object: `(request) => env.API.fetch(request)`,
   * not `env.API.fetch`. Hono's `app.request` or `app.fetch` fit as test doubles.
   */
  fetch?: (request: Request) => Response | Promise<Response>
}

/**
 * Why a call ended without an answer: `network` (the last attempt failed to connect or lost its answer),
 * `timeout` (the last attempt timed out), `deadline` (`deadlineMs` passed, also while an attempt or the body's
 * read was under way), `aborted` (the caller's signal
 * fired; its reason is the error's `cause`).
 */
export type OnceFetchErrorReason = 'network' | 'timeout' | 'deadline' | 'aborted'

/**
 * Thrown when a call ends without an answer: every attempt failed, the
 * deadline passed, or the caller aborted. `key` is the bare key every
 * attempt carried: the server may have applied the call, so to try again
 * later send the same request with `Idempotency-Key: headerOfKey(key)`, and
 * the server answers it once (within the same scope: see docs/client.md). When the caller aborts, `reason` is `aborted` and
 * `cause` is the signal's reason (an `AbortError` `DOMException` unless you
 * gave one).
 *
 * @example
 * try { await onceFetch(url, { method: 'POST', body, signal }) } catch (e) {
 *   if (e instanceof OnceFetchError) console.log(e.reason, e.attempts, e.key) // 'aborted', 1, '0193…'
 *   // later: onceFetch(url, { method: 'POST', body, headers: { 'idempotency-key': headerOfKey(e.key) } })
 * }
 */
export class OnceFetchError extends Error {
  override readonly name = 'OnceFetchError'
  constructor(
    message: string,
    readonly reason: OnceFetchErrorReason,
    readonly attempts: number,
    readonly key: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
