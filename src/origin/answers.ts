import { problem, type ProblemInit, type ReceiverProblem } from '../shared/problem.js'
import { ONCE_HEADERS } from '../shared/wire.js'
import { WriteConflict, WritesRefused } from './refused.js'

/**
 * A problem answer of the receiver, with `Once-Applied`: `?0`, nothing was
 * applied, but for `sequence-pruned` (applied, and its answer is gone): `?1`.
 *
 * @example
 * problemAnswer('in-flight', { detail: 'still running', instance: '/x', requestId: 'r-1' })
 */
export function problemAnswer(kind: ReceiverProblem, init: ProblemInit): Response {
  return applied(problem(kind, init), kind === 'sequence-pruned')
}

/**
 * The answer with `Once-Applied` set: `?1` applied (fresh or replayed), `?0` nothing applied.
 *
 * @example
 * applied(new Response(null, { status: 204 }), true)
 */
export function applied(res: Response, flag: boolean): Response {
  const value = flag ? '?1' : '?0'
  try {
    res.headers.set(ONCE_HEADERS.applied, value)
    return res
  } catch {
    // Immutable headers (a response from fetch): copy it.
    const out = new Response(res.body, res)
    out.headers.set(ONCE_HEADERS.applied, value)
    return out
  }
}

/**
 * What the receiver answers when the store's `apply` threw: nothing was applied. The database refused the writes
 * for good: 500 `handler-failed` (the same request would fail the same way); a guarded write found its row changed:
 * 503 `store-unavailable`, to run again and read anew; anything else: 503 `store-unavailable`, a passing failure.
 * The database's words (tables, columns, values) go to the origin's log, not to the client.
 *
 * @example
 * catch (err) { return storeFailure(err, c.req.path, requestId) }
 */
export function storeFailure(err: unknown, instance: string, requestId: string): Response {
  if (err instanceof WritesRefused) {
    console.error('hono-once: onceReceiver: the database refused the writes of request', requestId, err.cause)
    const detail =
      "The database refused the handler's writes for good (a constraint, a size limit, a statement it cannot run); nothing was applied. The origin's log has the error."
    return problemAnswer('handler-failed', { detail, instance, requestId })
  }
  const retry = { 'retry-after': '1' }
  if (err instanceof WriteConflict) {
    const detail =
      'A guarded write of the handler changed no row: another request changed what the handler read after it read it. Nothing was applied; retry with the same request id.'
    return problemAnswer('store-unavailable', { detail, instance, requestId, headers: retry })
  }
  console.error('hono-once: onceReceiver could not apply request', requestId, err)
  const detail = 'The request could not be recorded, so nothing was applied; retry with the same request id.'
  return problemAnswer('store-unavailable', { detail, instance, requestId, headers: retry })
}
