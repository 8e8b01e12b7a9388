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
