import { isFinalStatus } from '../shared/applied.js'
import { problemParts } from '../shared/problem.js'
import { readStoredReply, replayFilter, type StoredReply } from '../shared/reply.js'
import type { OnceCallPolicy } from './once-object-types.js'
import { MAX_RPC_BODY_BYTES } from './types.js'

const encoder = new TextEncoder()

/**
 * Thrown inside a transaction to roll the app's (or a method's) writes back;
 * carries the reply the client still gets.
 *
 * @example
 * if (!isFinalStatus(answer.status)) throw new Rollback(answer)
 */
export class Rollback extends Error {
  constructor(readonly answer: StoredReply) {
    super('hono-once: a non-final answer; its writes are rolled back')
  }
}

/**
 * What became of an app's writes when its answer is not committed, by how it ran: the end of the detail of a
 * `handler-failed` problem (whose title claims nothing about writes: each path says its own).
 *
 * @example
 * appFailed(err, requestId, key, WRITES.rolledBack)
 */
export const WRITES = {
  /** A keyed request of a transaction route. */
  rolledBack: 'Its writes were rolled back: nothing was applied',
  /** A keyed request of a lease route: released for a retry. */
  lease: "What it wrote before stays (a lease route's writes are not rolled back), and its key is released: a request with the same key runs the route again",
  /** A request without a key (or one the edge does not gate), run without a transaction or a record. */
  keyless: 'What it wrote before stays (a request without a key runs outside a transaction), and nothing records the request',
} as const

/**
 * Whether a reply with `status` can be sent at all: a `Response` takes 200–599 (a 101 needs its WebSocket, which
 * no RPC carries). The one rule for every reply an {@link OnceObject} answers, commits or replays.
 *
 * @param status - the reply's status
 * @returns true for an integer 200–599
 * @example
 * if (!sendableStatus(res.status)) … // refused: never committed, never passed on
 */
export function sendableStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 200 && status <= 599
}

/**
 * Reads an app's response into the reply the client gets now (every header)
 * and the reply that is stored for duplicates (the headers the policy lets
 * through; a body over `maxReplyBytes` replaced by a `reply-lost` problem
 * that says the request took effect). An answer no reply can carry (a 101
 * WebSocket upgrade: see {@link sendableStatus}) is a `handler-failed`
 * problem, not final: it is never committed, and its socket is closed.
 *
 * @param res - the app's response
 * @param policy - the edge's rules for stored replies
 * @param requestId - the logical request's id, for the `reply-lost` problem
 * @param key - the idempotency key, for the `reply-lost` problem
 * @param writes - what becomes of the app's writes when its answer is refused, for the client
 * @returns both forms
 * @example
 * const { answer, stored } = await readReply(await app.fetch(req), policy, requestId, key, 'its writes were rolled back')
 */
export async function readReply(
  res: Response,
  policy: OnceCallPolicy,
  requestId: string,
  key: string,
  writes: string,
): Promise<{ answer: StoredReply; stored: StoredReply; final: boolean }> {
  if (!sendableStatus(res.status)) return unsendable(res, requestId, key, writes)
  // The one reader the edge uses too (the bytes, and whether they are already encoded). The client at hand gets
  // every header; only the stored form is filtered.
  // Read no further than one RPC can carry: a larger answer cannot go back, and is never held whole.
  const read = await readStoredReply(res, () => true, MAX_RPC_BODY_BYTES)
  const over = 'rest' in read
  if (over) void read.rest.cancel().catch(() => {})
  const answer = over ? read.head : read
  const allowed = replayFilter(policy.allow && new Set(policy.allow))
  return storedForms(answer, answer.headers.filter(([name]) => allowed(name)), policy, requestId, key, over)
}

/** The refusal of an app's answer that no reply can carry (see {@link readReply}); its body and socket are let go. */
function unsendable(res: Response, requestId: string, key: string, writes: string): { answer: StoredReply; stored: StoredReply; final: boolean } {
  void res.body?.cancel().catch(() => {})
  const socket = (res as { webSocket?: WebSocket | null }).webSocket
  if (socket) {
    try {
      // Accepted here only to be closed: its other end, in the app, hears that nobody holds it.
      socket.accept()
      socket.close(1011, 'onceObject() cannot carry a WebSocket')
    } catch {
      // Already accepted or closed by the app: nothing to let go.
    }
  }
  const upgrade = res.status === 101 ? ' (a WebSocket upgrade)' : ''
  console.error(`hono-once: the OnceObject app answered ${res.status}${upgrade}, which onceObject() cannot pass on; ${writes}`)
  const refused = failedReply(
    `The app answered ${res.status}${upgrade}, which onceObject() cannot pass on: the answer travels back in one RPC, which carries no WebSocket (serve the object's WebSockets through its stub's fetch()). ${writes}.`,
    requestId,
    key,
  )
  return { answer: refused, stored: refused, final: false }
}

/**
 * The reply a method call answers (onceObject()'s `call` option): what
 * {@link OnceObject} methods return, turned into a reply. A plain value is
 * the JSON body of a reply with the edge's status; an {@link OnceReply}
 * chooses its own status and headers.
 *
 * @example
 * // in an OnceObject method: a refusal that is final (recorded, replayed), with the method's writes
 * if (cents > balance) return new OnceReply(409, { error: 'insufficient funds', balance })
 */
export class OnceReply {
  /**
   * @param status - the HTTP status (a 5xx, 408 or 429 rolls the method's writes back and leaves the key free)
   * @param body - any JSON value (`undefined` is sent as `null`)
   * @param headers - more response headers; `content-type: application/json` is set unless given
   */
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/**
 * A method's result refused by hono-once's own rule (see {@link methodReply}): its message is hono-once's words
 * only, and completes "The method … returned …" in the client's detail. Anything else thrown while a result is read
 * is the user's code (a `toJSON`, a getter, a proxy) and stays in the log.
 *
 * @example
 * if (err instanceof NoReply) detail = `The method ${name} returned ${err.message}.`
 */
export class NoReply extends TypeError {}

/**
 * A method's result as a reply, and its stored form (see {@link readReply}).
 * Everything a `Response` would refuse is refused here, inside the method's
 * transaction, so that no reply is committed that the edge cannot send.
 * Reading the result runs user code (`toJSON`, getters): what it throws
 * propagates as it is, for the caller to log, never to answer.
 *
 * @param result - what the method returned
 * @param status - the status of a plain value's reply (the edge's `call` option says it)
 * @param policy - the edge's rules for stored replies
 * @param requestId - the logical request's id
 * @param key - the idempotency key ('' for an ungated call)
 * @returns both forms
 * @throws NoReply whose message completes "The method … returned …": a result that is not JSON (a BigInt, a
 *   cycle, a function, a `toJSON` or getter that threw: that error is logged here), a `Response`, an `OnceReply`
 *   whose status is not an integer 200–599 or whose headers no `Headers` takes
 * @example
 * const { answer, stored } = methodReply({ balance: 300 }, 201, policy, requestId, 'dep-1')
 */
export function methodReply(
  result: unknown,
  status: number,
  policy: OnceCallPolicy,
  requestId: string,
  key: string,
): { answer: StoredReply; stored: StoredReply; final: boolean } {
  if (result instanceof Response) throw new NoReply('a Response, which a method call cannot send: return a JSON value, or an OnceReply for a status or headers of its own')
  const own = result instanceof OnceReply ? result : undefined
  // Each member read once: a getter may answer differently the second time.
  const replyStatus: unknown = own ? own.status : status
  if (!(typeof replyStatus === 'number' && sendableStatus(replyStatus))) {
    const shown = typeof replyStatus === 'number' ? String(replyStatus) : typeof replyStatus === 'string' ? JSON.stringify(replyStatus) : `of type ${typeof replyStatus}`
    throw new NoReply(`an OnceReply with status ${shown}: a reply's status is an integer 200–599`)
  }
  const headers = own ? headersOf(own.headers) : []
  if (!headers.some(([name]) => name === 'content-type')) headers.push(['content-type', 'application/json'])
  const value = own ? own.body : result
  let json: string | undefined
  try {
    json = JSON.stringify(value === undefined ? null : value)
  } catch (err) {
    // The runtime's word (a BigInt, a cycle) or the user's (a toJSON or a getter that threw): only the log has it.
    console.error('hono-once: an OnceObject method returned a value that is not JSON', err)
    throw new NoReply("a value that is not JSON (a BigInt, a cycle, or a toJSON or getter that threw: the error is in the object's log)")
  }
  // A function or a symbol is no JSON value either: JSON.stringify gives it no text at all.
  if (json === undefined) throw new NoReply(`a value that is not JSON: a ${typeof value}`)
  const body = encoder.encode(json)
  const allowed = replayFilter(policy.allow && new Set(policy.allow))
  return storedForms({ status: replyStatus, headers, body }, headers.filter(([name]) => allowed(name)), policy, requestId, key, body.byteLength > MAX_RPC_BODY_BYTES)
}

/** An OnceReply's headers as `Headers` would send them (names lower-case, values as strings), or a NoReply for one it refuses. */
function headersOf(given: Readonly<Record<string, string>>): [string, string][] {
  const headers = new Headers()
  try {
    for (const [name, value] of Object.entries(given)) headers.append(name, value)
  } catch (err) {
    // A name or value Headers refuses, or a getter or toString of the user's that threw: only the log has it.
    console.error('hono-once: an OnceObject method returned an OnceReply whose headers cannot be sent', err)
    throw new NoReply("an OnceReply whose headers cannot be sent (a name or value a Headers refuses: the error is in the object's log)")
  }
  return [...headers]
}

/**
 * The reply stored for duplicates: the kept headers, or a `reply-lost`
 * problem (saying the request took effect) when the body is over
 * `maxReplyBytes`.
 */
function storedForms(
  answer: StoredReply,
  kept: [string, string][],
  policy: OnceCallPolicy,
  requestId: string,
  key: string,
  overRpc: boolean,
): { answer: StoredReply; stored: StoredReply; final: boolean } {
  const { status, body } = answer
  const final = isFinalStatus(status)
  if (overRpc) {
    // Not even the client at hand can get it: the answer travels back in one RPC.
    const size = `its reply is larger than one call from the object can carry (${MAX_RPC_BODY_BYTES} bytes)`
    console.warn(`hono-once: the OnceObject app answered ${status}, but ${size}; the client gets ${final ? 'a reply-lost problem' : 'the bare status'}`)
    // A non-final answer keeps its status, bare: whether its writes stay depends on the route (a transaction rolls them back).
    if (!final) return { answer: { status, headers: [], body: new Uint8Array() }, stored: { status, headers: [], body: new Uint8Array() }, final }
    const detail =
      key === ''
        ? `The request ran with status ${status}, but ${size}. Nothing records it.`
        : `The request took effect with status ${status}, but ${size} and was not stored. It will not run again.`
    const lost = problemReply('reply-lost', detail, requestId, key)
    return { answer: lost, stored: lost, final }
  }
  if (body.byteLength <= policy.maxReplyBytes) return { answer, stored: { ...answer, headers: kept }, final }
  // The one catalogue's problem, as the edge builds it for once().
  const detail = `The request took effect with status ${status}, but its reply (${body.byteLength} bytes) exceeds maxReplyBytes (${policy.maxReplyBytes}) and was not stored. It will not run again.`
  const lost = problemReply('reply-lost', detail, requestId, key)
  return { answer, stored: lost, final }
}

/**
 * The reply of a method that threw (or broke the method-call contract):
 * a `handler-failed` problem; its writes are rolled back.
 *
 * @param detail - what went wrong, for the client
 * @param requestId - the logical request's id
 * @param key - the idempotency key ('' for an ungated call)
 * @returns the reply
 * @example
 * failedReply("The method deposit threw (its error is in the object's log). Nothing was applied.", requestId, 'dep-1')
 */
export function failedReply(detail: string, requestId: string, key: string): StoredReply {
  return problemReply('handler-failed', detail, requestId, key)
}

/**
 * The reply of a request that took effect but whose reply cannot be kept (it
 * broke off, or was still being read at `maxRunMs`): a `reply-lost` problem,
 * final, so the key is never run again.
 *
 * @param detail - what happened, for the client
 * @param requestId - the logical request's id
 * @param key - the idempotency key
 * @returns the reply
 * @example
 * lostReply('The request took effect with status 201, but its reply could not be read. It will not run again.', requestId, 'dep-1')
 */
export function lostReply(detail: string, requestId: string, key: string): StoredReply {
  return problemReply('reply-lost', detail, requestId, key)
}

/**
 * The reply for an app that failed without an answer Hono makes (a thrown
 * non-Error, a body that broke off): a `handler-failed` problem, logged.
 *
 * @param err - what was thrown
 * @param requestId - the logical request's id
 * @param key - the idempotency key
 * @param outcome - what became of the app's writes, for the client: one of {@link WRITES}
 * @returns the reply
 * @example
 * throw new Rollback(appFailed(err, requestId, key, WRITES.rolledBack))
 */
export function appFailed(err: unknown, requestId: string, key: string, outcome: string): StoredReply {
  console.error(`hono-once: the OnceObject app failed on ${requestId}`, err)
  return failedReply(`The app failed (its error is in the object's log). ${outcome}.`, requestId, key)
}

/** A problem of the shared catalogue as a stored reply; the key and request id are left out when '' (an ungated call). */
function problemReply(kind: 'reply-lost' | 'handler-failed', detail: string, requestId: string, key: string): StoredReply {
  const parts = problemParts(kind, {
    detail,
    ...(key === '' ? {} : { idempotencyKey: key }),
    ...(requestId === '' ? {} : { requestId }),
  })
  return { status: parts.status, headers: Object.entries(parts.headers), body: encoder.encode(parts.body) }
}
