import { HTTPException } from 'hono/http-exception'
import { problem, type ProblemInit, type ProblemKind } from '../shared/problem.js'

export { problem, PROBLEM_BASE, type ProblemDetails, type ProblemInit, type ProblemKind } from '../shared/problem.js'

/**
 * The same problem as an `HTTPException`, for throwing from middleware: Hono's
 * error handling answers with the problem response.
 *
 * @param kind - which problem
 * @param init - detail, instance and extension members
 * @returns an exception carrying the problem response
 * @example
 * throw problemException('key-missing', { detail: 'Send an Idempotency-Key header', instance: c.req.path })
 */
export function problemException(kind: ProblemKind, init: ProblemInit): HTTPException {
  const res = problem(kind, init)
  return new HTTPException(res.status as 400, { res, message: init.detail })
}

/**
 * The answer to a duplicate whose first request still runs (409
 * `in-flight`, `Retry-After: 1`: the original may finish any moment, so
 * the client comes back soon rather than at its lease's end).
 *
 * @param instance - the request path
 * @param idempotencyKey - the client's key
 * @param requestId - the first request's id
 * @returns the problem response
 * @example
 * if (admitted.kind === 'in_flight') return inFlight(c.req.path, key, admitted.requestId)
 */
export function inFlight(instance: string, idempotencyKey: string, requestId: string): Response {
  return problem('in-flight', {
    detail: 'The first request with this key is still being processed; retry after the delay given.',
    instance,
    idempotencyKey,
    requestId,
    headers: { 'retry-after': '1' },
  })
}
