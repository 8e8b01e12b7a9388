import { ONCE_HEADERS } from './wire.js'

/**
 * Base of the `type` URIs of hono-once's problems; each is documented in
 * docs/errors.md (the edge's) and docs/origin.md (the receiver's).
 *
 * @example
 * if (problem.type === PROBLEM_BASE + 'in-flight') retryLater()
 */
export const PROBLEM_BASE = 'https://hono-once.dev/problems/'

/**
 * Every problem type hono-once answers with, by its `type` slug: its status,
 * title and whether a retry with the same key or request id may succeed.
 * One type has one entry, whoever answers it (RFC 9457 §3.1.3: the title of
 * a type does not change from one occurrence to the next): the edge answers
 * clients with most of them, the receiver (`onceReceiver()`) answers the edge
 * with `in-flight`, `body-too-large` and those from `bad-request` on.
 */
const PROBLEMS = {
  'key-missing': [400, 'Idempotency-Key is missing', false],
  'key-malformed': [400, 'Idempotency-Key is malformed', false],
  'scope-missing': [400, 'The caller is not identified', false],
  'body-too-large': [413, 'Request body too large', false],
  'headers-too-large': [431, 'Request headers too large to forward', false],
  'key-reused': [422, 'Idempotency-Key reused with a different request', false],
  'in-flight': [409, 'This request is still being applied', true],
  'stable-area-unavailable': [503, 'Idempotency store unavailable', true],
  misconfigured: [500, 'hono-once is misconfigured', false],
  'reply-lost': [500, 'The request took effect but its reply was not stored', false],
  'handler-timeout': [504, 'The handler did not finish in time', true],
  'origin-failed': [502, 'No origin gave a usable answer', true],
  'origin-timeout': [504, 'No origin answered in time', true],
  'request-abandoned': [502, 'No replica could apply this request', false],
  'not-found': [404, 'No such route', false],
  'domain-invalid': [400, 'The ordering domain of this request is invalid', false],
  'header-unsignable': [400, 'A request header cannot be signed for the origins', false],
  unauthorized: [401, 'A valid bearer token is needed', false],
  'bad-request': [400, 'Malformed request to the receiver', false],
  // Claims nothing about writes: each answer's detail says what became of them (rolled back by the receiver, a
  // transaction route or a method call; kept by an OnceObject lease route or a request without a key).
  'handler-failed': [500, 'The handler failed', false],
  'signature-invalid': [401, 'The signature is missing or invalid', false],
  'request-id-missing': [401, 'Once-Request-Id is missing', false],
  'sequence-gap': [409, 'Earlier sequence numbers are missing', true],
  'sequence-conflict': [409, 'The sequence slot or request id was applied differently', false],
  'sequence-pruned': [409, 'The result of this sequence number was pruned', false],
  'store-unavailable': [503, 'The receiver store failed', true],
} as const satisfies Record<string, readonly [status: number, title: string, retryable: boolean]>

/**
 * Every problem hono-once answers with, by its `type` slug.
 *
 * @example
 * const kind: ProblemKind = 'key-reused'
 */
export type ProblemKind = keyof typeof PROBLEMS

/**
 * The problems `onceReceiver()` answers the edge with (DESIGN §6).
 *
 * @example
 * const kind: ReceiverProblem = 'sequence-gap'
 */
export type ReceiverProblem = Extract<
  ProblemKind,
  | 'bad-request'
  | 'body-too-large'
  | 'handler-failed'
  | 'handler-timeout'
  | 'signature-invalid'
  | 'request-id-missing'
  | 'in-flight'
  | 'sequence-gap'
  | 'sequence-conflict'
  | 'sequence-pruned'
  | 'store-unavailable'
>

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
  expected_sequence?: number
}

/** What {@link problem} needs besides the kind. */
export interface ProblemInit {
  detail: string
  /** The request path the problem is about (`instance`). */
  instance?: string
  /** The client's `Idempotency-Key` (`idempotency_key`). */
  idempotencyKey?: string
  /** The request id (`request_id`): the edge's record's, or the `Once-Request-Id` the receiver got. */
  requestId?: string | undefined
  /** For `sequence-gap`: the sequence the origin needs next (`expected_sequence`, and the `Once-Expected-Sequence` header). */
  expectedSequence?: number
  /**
   * This answer cannot keep the promise its type's `retryable: true` makes
   * (nothing ran, a retry may pass): e.g. a keyless write that may have taken
   * effect. Only ever narrows: a type that says `false` stays `false`.
   */
  retryable?: false
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>
}

/**
 * Builds an `application/problem+json` response (RFC 9457): the members in
 * the RFC's order (`type`, `title`, `status`, `detail`, `instance`), then
 * hono-once's extension members (`retryable`, `idempotency_key`,
 * `request_id`, `expected_sequence`). The edge and the receiver both answer
 * through it.
 *
 * @param kind - which problem
 * @param init - detail, instance, extension members and extra headers
 * @returns the response
 * @example
 * problem('key-reused', { detail: 'Same key, different body', instance: '/deposits', idempotencyKey: 'k1' })
 * problem('sequence-gap', { detail: 'Need 3 first.', instance: '/accounts/a1', requestId, expectedSequence: 3 })
 */
export function problem(kind: ProblemKind, init: ProblemInit): Response {
  const { status, headers, body } = problemParts(kind, init)
  return new Response(body, { status, headers })
}

/**
 * The same problem as {@link problem}, as its parts rather than a
 * `Response`: for code that must have the bytes synchronously (a Durable
 * Object building a stored reply inside `transactionSync()`).
 *
 * @param kind - which problem
 * @param init - as for {@link problem}
 * @returns status, headers (lower-case names) and the JSON body text
 * @example
 * const { status, headers, body } = problemParts('handler-failed', { detail: 'The method deposit threw: …' })
 */
export function problemParts(kind: ProblemKind, init: ProblemInit): { status: number; headers: Record<string, string>; body: string } {
  const [status, title, retryable] = PROBLEMS[kind]
  const body: ProblemDetails = {
    type: PROBLEM_BASE + kind,
    title,
    status,
    detail: init.detail,
    ...(init.instance === undefined ? {} : { instance: init.instance }),
    retryable: init.retryable ?? retryable,
  }
  if (init.idempotencyKey !== undefined) body.idempotency_key = init.idempotencyKey
  if (init.requestId !== undefined) body.request_id = init.requestId
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', ...init.headers }
  if (init.expectedSequence !== undefined) {
    body.expected_sequence = init.expectedSequence
    headers[ONCE_HEADERS.expectedSequence] = String(init.expectedSequence)
  }
  return { status, headers, body: JSON.stringify(body) }
}
