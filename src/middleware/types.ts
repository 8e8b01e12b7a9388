import type { JsonValue } from '../durable/types.js'
import type { OnceCommitError } from './errors.js'

/** Options of {@link OnceContext.commit}. */
export interface CommitOptions {
  /**
   * Store these JSON arguments instead of the body; duplicates get the reply
   * that the `onDuplicate` option builds from them (seed 003's
   * redundant-message handler). Needs `onDuplicate`. Stored as their JSON
   * (at most 1 MiB); args that are not JSON or larger make duplicates get
   * `reply-lost` instead (logged), never a second run.
   */
  args?: JsonValue
}

/** What `once()` puts on the context as `c.var.once`. */
export interface OnceContext {
  /** The client's idempotency key. */
  key: string
  /** The tenant scope the key lives in. */
  scope: string
  /** Stable id of this logical request: the same on every retry of it. */
  requestId: string
  /** 1 on the first run; higher when a retry took over after a failure or a crashed Worker. */
  attempt: number
  /** The ordering domain, with `once({ domain })`. */
  domain?: string
  /** The request's sequence in its domain (gapless, increasing), with `once({ domain })`. */
  sequence?: number
  /** True when this answer is a replay (only seen by `onDuplicate`). */
  replayed: boolean
  /**
   * Aborts when this attempt should stop: it ran past `maxRunMs`, or
   * another attempt took its key over. Pass it to the handler's own
   * fetches and long waits.
   *
   * @example
   * const res = await fetch(upstream, { signal: c.var.once.signal })
   */
  signal: AbortSignal
  /**
   * The roll-forward point (seed 003). With a response, stores it now: from
   * here on, duplicates get it even if the handler later fails. Without one,
   * marks the request as taken effect; duplicates get whatever the handler
   * finally returns, whatever its status; duplicates arriving meanwhile
   * wait for it. Call it at most once. Resolves only once the reply (or the
   * mark) is durably stored; rejects with {@link OnceCommitError} when it
   * is not: then do not go on to effects that needed the commit. Either
   * way the request counts as taken effect: the key is never released
   * after this call, and what cannot be stored (args too large or not JSON,
   * a reply that cannot be read) is kept as a `reply-lost` problem.
   *
   * @example
   * const res = c.json({ id }, 201)
   * await c.var.once.commit(res)
   * await notify(id) // a failure here no longer re-runs the deposit
   * return res
   */
  commit(response?: Response, options?: CommitOptions): Promise<void>
}

/** Context variables set by `once()`; use as `new Hono<{ Variables: OnceVariables }>()`. */
export interface OnceVariables {
  once: OnceContext
}

declare module 'hono' {
  interface ContextVariableMap {
    once: OnceContext
  }
}
