/**
 * Base of the `type` URIs of hono-once's problems; each is documented in the README's error table.
 *
 * @example
 * if (problem.type === PROBLEM_BASE + 'in-flight') retryLater()
 */
export const PROBLEM_BASE = 'https://hono-once.dev/problems/'

/** Every problem hono-once answers with, by its `type` slug. */
export type ProblemKind =
  | 'key-missing'
  | 'key-malformed'
  | 'scope-missing'
  | 'body-too-large'
  | 'key-reused'
  | 'in-flight'
  | 'stable-area-unavailable'
  | 'misconfigured'
  | 'reply-lost'
  | 'handler-timeout'
  | 'origin-failed'
  | 'origin-timeout'
  | 'request-abandoned'
  | 'not-found'
  | 'domain-invalid'
  | 'unauthorized'

const TITLES: Record<ProblemKind, [status: number, title: string, retryable: boolean]> = {
  'key-missing': [400, 'Idempotency-Key is missing', false],
  'key-malformed': [400, 'Idempotency-Key is malformed', false],
  'scope-missing': [400, 'The caller is not identified', false],
  'body-too-large': [413, 'Request body too large', false],
  'key-reused': [422, 'Idempotency-Key reused with a different request', false],
  'in-flight': [409, 'A request with this Idempotency-Key is still being processed', true],
  'stable-area-unavailable': [503, 'Idempotency store unavailable', true],
  misconfigured: [500, 'hono-once is misconfigured', false],
  'reply-lost': [500, 'The request took effect but its reply was not stored', false],
  'handler-timeout': [504, 'The handler did not finish in time', true],
  'origin-failed': [502, 'No origin gave a usable answer', true],
  'origin-timeout': [504, 'No origin answered in time', true],
  'request-abandoned': [502, 'No replica could apply this request', false],
  'not-found': [404, 'No such route', false],
  'domain-invalid': [400, 'The ordering domain of this request is invalid', false],
  unauthorized: [401, 'A valid bearer token is needed', false],
}

/** An RFC 9457 problem details object, with hono-once's extension members. */
export interface ProblemDetails {
  type: string
  title: string
  status: number
  detail: string
  instance?: string
  retryable: boolean
  idempotency_key?: string
  request_id?: string
}

/** What {@link problem} needs besides the kind. */
export interface ProblemInit {
  detail: string
  /** The request path the problem is about (`instance`). */
  instance?: string
  idempotencyKey?: string
  requestId?: string
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>
}

/**
 * Builds an `application/problem+json` response (RFC 9457).
 *
 * @param kind - which problem
 * @param init - detail, instance and extension members
 * @returns the response
 * @example
 * problem('key-reused', { detail: 'Same key, different body', instance: '/deposits', idempotencyKey: 'k1' })
 */
export function problem(kind: ProblemKind, init: ProblemInit): Response {
  const [status, title, retryable] = TITLES[kind]
  const body: ProblemDetails = { type: PROBLEM_BASE + kind, title, status, detail: init.detail, retryable }
  if (init.instance !== undefined) body.instance = init.instance
  if (init.idempotencyKey !== undefined) body.idempotency_key = init.idempotencyKey
  if (init.requestId !== undefined) body.request_id = init.requestId
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...init.headers },
  })
}
