/**
 * The one rule "was this request applied?" (DESIGN §6), for everything that
 * reads an origin's answer: failover, hedge, replicate, the relay resend, gap
 * fill and catch-up at the edge, and the status rule that `once()` and the
 * receiver use to decide what to record.
 *
 * @module
 */
import { PROBLEM_BASE, type ProblemInit, problemParts } from './problem.js'
import type { ForwardRequest, WireIdentity } from './types.js'
import { parseBoolean } from './wire.js'

/**
 * Whether a status is a final answer when nothing else is known: everything
 * but 5xx, 408 and 429. `once()` commits a local handler's final answer; the
 * receiver records an app's final answer; an origin without the receiver
 * (no `Once-Applied`) is read by this same rule.
 *
 * @param status - an HTTP status code
 * @returns true when the answer is final
 * @example
 * isFinalStatus(422) // true
 * isFinalStatus(503) // false
 */
export function isFinalStatus(status: number): boolean {
  return status < 500 && status !== 408 && status !== 429
}

/**
 * Reads `Once-Applied`, an RFC 8941 Boolean item: `?1` true, `?0` false,
 * parameters allowed (`?0;reason="busy"`).
 *
 * @param value - the header value, or null when absent
 * @returns the flag; undefined when absent or not a Boolean (then the status decides)
 * @example
 * parseApplied('?1') // true
 * parseApplied(null) // undefined
 */
export function parseApplied(value: string | null): boolean | undefined {
  return value === null ? undefined : parseBoolean(value)
}

/**
 * What an origin's answer says about its request (DESIGN §6):
 * - `applied`: the recorded result of applying it (`Once-Applied: ?1`, or no
 *   header and a final status): final, never sent again; `answerGone` when
 *   the origin applied it but no longer keeps its answer (`sequence-pruned`);
 * - `not-applied`: nothing was applied (`Once-Applied: ?0`, or no header and
 *   5xx/408/429): safe to send again, to this origin or another. `reason` is
 *   the receiver's problem slug when it gave one; `permanent` when the
 *   refusal will not pass by itself (`handler-failed`, `body-too-large`, or
 *   an app's own 5xx passed on `?0` other than 502, 503 and 504): the only
 *   answers that count towards poison;
 * - `gap`: the origin needs earlier sequences first (409 with
 *   `Once-Expected-Sequence`, unless `Once-Applied: ?1`).
 * A timeout or a lost answer is none of these: it is unknown, and the
 * request is sent again with the same id.
 *
 * @example
 * const v: AnswerVerdict = { kind: 'gap', expected: 4 }
 */
export type AnswerVerdict =
  | { kind: 'applied'; answerGone?: boolean }
  | { kind: 'not-applied'; reason?: string | undefined; permanent: boolean }
  | { kind: 'gap'; expected: number }

/** An answer's headers: a `Headers` object, or name/value pairs with lower-case names (as `OriginReply` keeps them). */
export type AnswerHeaders = Headers | readonly (readonly [string, string])[]

/** The `reason` of an answer without `Once-Applied` where every answer must be the receiver's (`receiverOnly`). */
export const UNMARKED = 'unmarked'

/** The receiver's reason for a request another send of which it is applying right now: it may yet take effect there. */
export const STILL_APPLYING = 'in-flight'

/**
 * Whether a "not applied" answer may still be followed by the request
 * taking effect at that origin, so that no one may say "it was not
 * applied": the receiver busy with this very request ({@link STILL_APPLYING}:
 * another send of it is being applied there now), or an answer without the
 * receiver's mark where its word was due ({@link UNMARKED}) with a status a
 * proxy gives after passing a request on (5xx: a load balancer's 504 while
 * the receiver goes on; 408). An unmarked 3xx or 4xx (a redirect, a WAF's
 * 403, a 413 for the request's size) came from something that did not pass
 * it on. Everything else not applied is the receiver's own word. Read by
 * every place that tells a client or an operator "nothing was applied".
 *
 * @param reason - the verdict's `reason` (or an attempt's)
 * @param status - the answer's status
 * @returns true when the request may still have been, or be, applied
 * @example
 * mayStillApply('in-flight', 409) // true
 * mayStillApply(UNMARKED, 504) // true
 * mayStillApply(UNMARKED, 403) // false: a WAF's page
 * mayStillApply('handler-failed', 500) // false
 */
export function mayStillApply(reason: string | undefined, status: number): boolean {
  return reason === STILL_APPLYING || (reason === UNMARKED && (status >= 500 || status === 408))
}

/** Refusals that will not pass by themselves: the app threw on this request, or its body is over the receiver's limit. */
const PERMANENT = new Set(['handler-failed', 'body-too-large'])

/**
 * What an HTTP server or proxy in front of the receiver answers for this
 * request's own size, the same on every send: a body, URL or header over its
 * limit (413, 414, 431). Where every answer must be the receiver's, such an
 * unmarked answer is a refusal for good (it counts towards poison), not a
 * passing outage. Anything else unmarked (a 400 or 415 a misconfigured
 * proxy gives every request, a redirect, 401/403/404, a 5xx) says something
 * about the route or the server, which may be fixed, and stays temporary:
 * an outage must never abandon a good request.
 */
const REFUSED_BEFORE_THE_RECEIVER = new Set([413, 414, 431])

/**
 * Whether an answer without `Once-Applied`, where the receiver's word was due,
 * refuses the request itself for good (see {@link REFUSED_BEFORE_THE_RECEIVER}).
 *
 * @param status - the unmarked answer's status
 * @returns true for 413, 414 and 431
 * @example
 * refusedBeforeTheReceiver(431) // true: the headers are over the server's limit
 * refusedBeforeTheReceiver(302) // false: a load balancer's redirect
 */
export function refusedBeforeTheReceiver(status: number): boolean {
  return REFUSED_BEFORE_THE_RECEIVER.has(status)
}

/** The 5xx statuses that say "not now" (DESIGN §6's temporary answers, with 408 and 429): an app's other 5xx is its last word on the request. */
const PASSING_5XX = new Set([502, 503, 504])

/**
 * What a receiver from before `Once-Applied` meant by its own problems (it
 * sent no header): refusals that applied nothing. Read only when the `type`
 * is the receiver's full URI, never by a suffix an app problem may share.
 */
const LEGACY_REFUSALS = new Set(['signature-invalid', 'request-id-missing', 'bad-request', 'in-flight', 'store-unavailable', 'sequence-gap', 'sequence-conflict'])

/**
 * The one rule (DESIGN §6): reads an origin's answer and says whether the
 * request was applied. In this order: `Once-Applied: ?1` is applied; `409`
 * with `Once-Expected-Sequence` is a gap; `Once-Applied` decides when present; a receiver problem says which
 * refusal it is (and `sequence-pruned` is "applied, answer gone"); without
 * the header the status decides: final (applied) unless 5xx, 408 or 429.
 *
 * @param status - the answer's HTTP status
 * @param headers - its headers
 * @param body - its body, when read (a receiver problem's `type` is read from it)
 * @param receiverOnly - every answer must carry `Once-Applied` (a signed write reaches `onceReceiver()`, which
 *   marks every answer to it): one without it applied nothing, whatever its status
 * @returns the verdict
 * @example
 * verdictOf(201, [['once-applied', '?1']]) // { kind: 'applied' }
 * verdictOf(503, []) // { kind: 'not-applied', permanent: false }
 * verdictOf(409, [['once-expected-sequence', '4']]) // { kind: 'gap', expected: 4 }
 */
export function verdictOf(status: number, headers: AnswerHeaders, body?: Uint8Array, receiverOnly = false): AnswerVerdict {
  const get = (name: string): string | null => {
    if (headers instanceof Headers) return headers.get(name)
    for (const [n, v] of headers) if (n.toLowerCase() === name) return v
    return null
  }
  const applied = parseApplied(get('once-applied'))
  // `?1` is final whatever else the answer says (an app's own 409 may carry any header); the receiver's gap says `?0`.
  if (status === 409 && applied !== true) {
    const expected = get('once-expected-sequence')?.trim()
    if (expected !== undefined && /^[0-9]{1,15}$/.test(expected)) return { kind: 'gap', expected: Number(expected) }
  }
  const reason = receiverProblem(get('content-type'), body)
  if (reason === 'sequence-pruned' && applied !== false) return { kind: 'applied', answerGone: true }
  if (applied === true) return { kind: 'applied' }
  // `?0` without a receiver problem: the app's own non-final answer, passed on. A 500 it returned (a `catch` that
  // answers 500) will come again for the same request, as a throw would: permanent, unless a status that says "not now".
  if (applied === false) return { kind: 'not-applied', reason, permanent: reason === undefined ? status >= 500 && !PASSING_5XX.has(status) : PERMANENT.has(reason) }
  if (reason !== undefined && LEGACY_REFUSALS.has(reason)) return { kind: 'not-applied', reason, permanent: false }
  // Where every answer must be the receiver's (a signed write, a replica): one without its word came from something
  // on the way (a load balancer's redirect, a WAF page), which applied nothing.
  if (receiverOnly) return { kind: 'not-applied', reason: UNMARKED, permanent: refusedBeforeTheReceiver(status) }
  return isFinalStatus(status) ? { kind: 'applied' } : { kind: 'not-applied', permanent: false }
}

/** The slug of a receiver problem (`https://hono-once.dev/problems/<slug>`), or undefined for any other answer. */
function receiverProblem(contentType: string | null, body: Uint8Array | undefined): string | undefined {
  if (!body || body.byteLength === 0 || body.byteLength > 64 * 1024 || !contentType?.includes('problem+json')) return undefined
  try {
    const type = (JSON.parse(new TextDecoder().decode(body)) as { type?: unknown }).type
    return typeof type === 'string' && type.startsWith(PROBLEM_BASE) ? type.slice(PROBLEM_BASE.length) : undefined
  } catch {
    return undefined
  }
}

/** What a problem is about, as far as the code building it knows: the request's path, key and request id. */
export type ProblemAbout = Pick<ProblemInit, 'instance' | 'idempotencyKey' | 'requestId'>

/**
 * What a forwarded request's problem is about: its path without the query
 * (`instance`, as `once()` names it), its key and its request id.
 *
 * @param request - the request as it travels to origins
 * @param wire - its identity
 * @returns the members for {@link replyLost} and its kin
 * @example
 * aboutRequest({ method: 'POST', path: '/deposits?x=1', headers: [], body }, { requestId: 'r-1', key: 'dep-1' }) // { instance: '/deposits', idempotencyKey: 'dep-1', requestId: 'r-1' }
 */
export function aboutRequest(request: Pick<ForwardRequest, 'path'>, wire: Pick<WireIdentity, 'requestId' | 'key'>): ProblemAbout {
  return { instance: request.path.split('?')[0]!, ...(wire.key === undefined ? {} : { idempotencyKey: wire.key }), requestId: wire.requestId }
}

/**
 * The answer committed for a request an origin applied but whose answer
 * the edge could not keep (its body was over `maxResponseBytes`): the one
 * final problem `reply-lost` of the catalogue (`shared/problem.ts`: 500,
 * `retryable: false`, as `once()` answers it), marked `Once-Applied: ?1` so
 * every reader counts it as applied. Its body names the limit, never the
 * origin, so replicas that all answered too much agree.
 *
 * @param status - the status of the answer that was too large
 * @param limit - the option and its value, e.g. `maxResponseBytes (1048576 bytes)`
 * @param about - the request's path, key and request id, where known
 * @returns status, headers and body, as an origin reply is kept
 * @example
 * replyLost(201, 'maxResponseBytes (1048576 bytes)', { instance: '/deposits', idempotencyKey: 'dep-1', requestId }) // { status: 500, … }
 */
export function replyLost(status: number, limit: string, about: ProblemAbout = {}): { status: number; headers: [string, string][]; body: Uint8Array } {
  return lostReply(`The origin applied the request and answered ${status}, but its answer was larger than ${limit}, so it was not kept. It will not run again.`, about)
}

/**
 * The {@link replyLost} committed for an ordered request a quorum of
 * replicas applied but whose answer none keeps any more (each answered
 * `sequence-pruned`: it waited past their records' retention).
 *
 * @param sequence - the request's sequence in its domain
 * @param about - the request's path, key and request id, where known
 * @returns status, headers and body, as an origin reply is kept
 * @example
 * answerPruned(7, aboutRequest(entry.request, entry)) // { status: 500, … reply-lost }
 */
export function answerPruned(sequence: number, about: ProblemAbout = {}): { status: number; headers: [string, string][]; body: Uint8Array } {
  return lostReply(`The replicas applied the request (sequence ${sequence}), but their record of its answer was pruned before it was committed here, so it is gone. It will not run again.`, about)
}

/** The catalogue's `reply-lost` (its status, title and `retryable`), as bytes, marked applied. */
function lostReply(detail: string, about: ProblemAbout): { status: number; headers: [string, string][]; body: Uint8Array } {
  const parts = problemParts('reply-lost', { detail, ...about, headers: { 'once-applied': '?1' } })
  return { status: parts.status, headers: Object.entries(parts.headers), body: new TextEncoder().encode(parts.body) }
}

/**
 * What an answer over `maxResponseBytes` becomes, read by its status and
 * headers alone (its body was not kept): the final {@link replyLost} when
 * it was applied; undefined when it applied nothing (send it again).
 *
 * With `receiverOnly` (a replica, which must run the receiver), only an
 * answer that says `Once-Applied: ?1` itself was applied: a big page
 * without it (a load balancer's, a WAF's) is no acknowledgement.
 *
 * @param head - status and headers of the answer that was too large
 * @param maxResponseBytes - the limit it went over
 * @param receiverOnly - read it as a replica's answer (see above)
 * @param about - the request's path, key and request id, where known
 * @returns the reply to keep, or undefined
 * @example
 * tooLargeAnswer({ status: 201, headers: [] }, 1024) // a 500 reply-lost, applied
 * tooLargeAnswer({ status: 201, headers: [] }, 1024, true) // undefined: not the receiver's word
 */
export function tooLargeAnswer(
  head: { status: number; headers: AnswerHeaders },
  maxResponseBytes: number,
  receiverOnly = false,
  about: ProblemAbout = {},
): ReturnType<typeof replyLost> | undefined {
  if (verdictOf(head.status, head.headers).kind !== 'applied') return undefined
  if (receiverOnly && !hasApplied(head.headers)) return undefined
  return replyLost(head.status, `maxResponseBytes (${maxResponseBytes} bytes)`, about)
}

/**
 * Whether an answer carries the receiver's word: a `Once-Applied` that is an
 * RFC 8941 Boolean (`?1` or `?0`), which a replica's answer must have. A
 * header of another value is no word (as {@link verdictOf} reads it).
 *
 * @param headers - the answer's headers
 * @returns true when the header is there and a Boolean
 * @example
 * hasApplied([['once-applied', '?1']]) // true
 * hasApplied([['once-applied', 'true']]) // false
 */
export function hasApplied(headers: AnswerHeaders): boolean {
  if (headers instanceof Headers) return parseApplied(headers.get('once-applied')) !== undefined
  return headers.some(([name, value]) => name.toLowerCase() === 'once-applied' && parseApplied(value) !== undefined)
}
