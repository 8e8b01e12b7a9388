import type { Context, Next } from 'hono'
import { isFinalStatus, parseApplied } from '../shared/applied.js'
import { HOP_BY_HOP } from '../shared/headers.js'
import { readStoredReply } from '../shared/reply.js'
import { ONCE_HEADERS } from '../shared/wire.js'
import type { StoredReply } from './types.js'

/**
 * What the handler chain gave: an answer to record (with its writes, or without them when it was thrown), one to
 * pass on without recording, a failure, or nothing in time.
 */
export type ChainResult =
  | { kind: 'answer'; reply: StoredReply; withoutWrites: boolean }
  | { kind: 'passed' }
  /** `detail` is for the client, in general terms; `error` (what was thrown) only for the origin's log. */
  | { kind: 'failed'; detail: string; error?: unknown }
  | { kind: 'timed-out' }

/**
 * The chain's result, or `timed-out` after `ms`, reading the answer's body included (a body that never ends holds
 * the request as long as a handler that never returns). The chain goes on, unheard: its store refuses what it does later.
 */
export async function withinDeadline(chain: Promise<ChainResult>, ms: number): Promise<ChainResult> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<ChainResult>((resolve) => (timer = setTimeout(() => resolve({ kind: 'timed-out' }), ms)))
  try {
    return await Promise.race([chain, deadline])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}

/**
 * Runs the chain after the receiver and reads what it gave, by one rule for every way it can end:
 *
 * - a final status (2xx, 3xx, 4xx but 408 and 429) the app answered is an **answer**, recorded with the writes
 *   the handler made;
 * - a Hono `HTTPException` with a final status (a validator's 400, an auth middleware's 401, the app's
 *   `throw new HTTPException(409)`), rendered final by the app's error handler, is an answer too, recorded
 *   **without** the writes made before the throw (a throw aborts, as in every transactional API);
 * - **passed on**, rolled back, to be tried again: a 5xx, 408 or 429, an `HTTPException` with such a status
 *   (Hono's `timeout()` 504), and an answer that says itself nothing was applied (`Once-Applied: ?0`: a relayed
 *   upstream's refusal);
 * - **failed** (500 `handler-failed`, which the edge counts towards poison): any other throw, an `HTTPException`
 *   the app's error handler turned into a 5xx, a handler that returned no response (a missing `return`), and a
 *   final answer whose body fails while it is read (a stream that errors, a body already used).
 *
 * Hono's not-found 404 is an answer like any 404 the app gives: the same request finds no route the next time.
 */
export async function runChain(c: Context, next: Next): Promise<ChainResult> {
  try {
    await next()
  } catch (err) {
    // Not an Error (`throw 'x'`): Hono's error handler never saw it.
    return { kind: 'failed', detail: `The handler threw (${errorName(err)})`, error: err }
  }
  let withoutWrites = false
  if (c.error !== undefined) {
    const status = isHttpException(c.error) ? (c.error as unknown as { status: number }).status : undefined
    if (status === undefined || (isFinalStatus(status) && !isFinalStatus(c.res.status))) {
      return { kind: 'failed', detail: `The handler threw (${errorName(c.error)})`, error: c.error }
    }
    if (!isFinalStatus(status)) return { kind: 'passed' }
    withoutWrites = true
  }
  if (!c.finalized) return { kind: 'failed', detail: 'The handler returned no response (a missing return?)' }
  if (parseApplied(c.res.headers.get(ONCE_HEADERS.applied)) === false) return { kind: 'passed' }
  if (!isFinalStatus(c.res.status)) return { kind: 'passed' }
  try {
    return { kind: 'answer', reply: await readStoredReply(c.res, storedByReceiver), withoutWrites }
  } catch (err) {
    // The app's own answer broke off (a stream that errors, a body a middleware already read): the same request
    // would break it again, so it is the handler's failure, not the store's.
    return { kind: 'failed', detail: `The handler's answer (${c.res.status}) could not be read (${errorName(err)})`, error: err }
  }
}

/**
 * What was thrown, in words safe to send: its class's name (`TypeError`), never its message, which may hold a
 * connection string, SQL or a customer's data (the message goes to the origin's log).
 */
function errorName(err: unknown): string {
  if (!(err instanceof Error)) {
    const kind = err === null ? 'null' : typeof err
    return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}, not an Error`
  }
  return /^[A-Za-z_$][\w$]{0,63}$/.test(err.name) ? err.name : 'an Error'
}

/** Hono's `HTTPException` (by its shape: an app may bundle another copy of Hono): an answer thrown, not a failure. */
function isHttpException(err: unknown): boolean {
  return err instanceof Error && typeof (err as { getResponse?: unknown }).getResponse === 'function' && typeof (err as { status?: unknown }).status === 'number'
}

/** Which headers of an answer the receiver stores: all but hop-by-hop ones, and Content-Length (recomputed from the body). */
function storedByReceiver(name: string): boolean {
  return name !== 'content-length' && !HOP_BY_HOP.includes(name)
}
