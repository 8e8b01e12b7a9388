import { ONCE_HEADERS } from '../shared/wire.js'

/**
 * Base of the `type` URIs of the receiver's problems (the same base as the edge's).
 *
 * @example
 * if (body.type === RECEIVER_PROBLEM_BASE + 'sequence-gap') sendMissing()
 */
export const RECEIVER_PROBLEM_BASE = 'https://hono-once.dev/problems/'

/**
 * Every problem `onceReceiver()` answers with, by its `type` slug.
 *
 * @example
 * const kind: ReceiverProblem = 'sequence-gap'
 */
export type ReceiverProblem =
  | 'bad-request'
  | 'body-too-large'
  | 'handler-failed'
  | 'signature-invalid'
  | 'request-id-missing'
  | 'in-flight'
  | 'sequence-gap'
  | 'sequence-conflict'
  | 'sequence-pruned'
  | 'store-unavailable'

const PROBLEMS: Record<ReceiverProblem, [status: number, title: string, retryable: boolean]> = {
  'bad-request': [400, 'Malformed request to the receiver', false],
  'body-too-large': [413, 'The request body is larger than the receiver accepts', false],
  'handler-failed': [500, 'The handler threw; nothing was applied', false],
  'signature-invalid': [401, 'The signature is missing or invalid', false],
  'request-id-missing': [401, 'Once-Request-Id is missing', false],
  'in-flight': [409, 'This request is still being applied', true],
  'sequence-gap': [409, 'Earlier sequence numbers are missing', true],
  'sequence-conflict': [409, 'The sequence slot or request id was applied differently', false],
  'sequence-pruned': [409, 'The result of this sequence number was pruned', false],
  'store-unavailable': [503, 'The receiver store failed', true],
}

/**
 * What {@link receiverProblem} needs besides the kind.
 *
 * @example
 * const init: ReceiverProblemInit = { detail: 'Once-Sequence must be a positive integer.', instance: '/accounts/a1' }
 */
export interface ReceiverProblemInit {
  detail: string
  /** The request path (`instance`). */
  instance: string
  /** `Once-Request-Id` of the request, when known (`request_id`). */
  requestId?: string | undefined
  /** For `sequence-gap`: the sequence the origin needs next (`expected_sequence`, and the header). */
  expectedSequence?: number
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>
}

/**
 * Builds the receiver's `application/problem+json` response (RFC 9457), with
 * the extension members `retryable`, `request_id` and `expected_sequence`.
 * A `sequence-gap` also carries the `Once-Expected-Sequence` header. Every
 * problem says `Once-Applied: ?0` (nothing was applied), but
 * `sequence-pruned`, which is "applied, and its answer is gone": `?1`.
 *
 * @param kind - which problem
 * @param init - detail, instance and extension members
 * @returns the response
 * @example
 * return receiverProblem('sequence-gap', { detail: 'Need 3 first.', instance: c.req.path, expectedSequence: 3 })
 */
export function receiverProblem(kind: ReceiverProblem, init: ReceiverProblemInit): Response {
  const [status, title, retryable] = PROBLEMS[kind]
  const body: Record<string, string | number | boolean> = { type: RECEIVER_PROBLEM_BASE + kind, title, status, detail: init.detail, instance: init.instance, retryable }
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    ...init.headers,
    [ONCE_HEADERS.applied]: kind === 'sequence-pruned' ? '?1' : '?0',
  }
  if (init.requestId !== undefined) body.request_id = init.requestId
  if (init.expectedSequence !== undefined) {
    body.expected_sequence = init.expectedSequence
    headers[ONCE_HEADERS.expectedSequence] = String(init.expectedSequence)
  }
  return new Response(JSON.stringify(body), { status, headers })
}
