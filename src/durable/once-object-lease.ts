/**
 * Lease routes of an `OnceObject` (`onceRoute({ lease: true })`): a
 * handler that calls out cannot run in one storage transaction, so it runs
 * as `once()` runs a handler: its record in flight while the app runs,
 * renewed by nothing (the object itself runs it), bounded by `maxRunMs`.
 */
import { isFinalStatus } from '../shared/applied.js'
import type { Waiters } from '../shared/waiters.js'
import type { OnceRecords, OnceRow } from './once-object-records.js'
import { appFailed, lostReply, readReply, sendableStatus, WRITES } from './once-object-reply.js'
import { answeredStatus, expectAnswer, forgetAnswer } from './once-object-route.js'
import type { OnceAnswer, OnceCall, OnceCallIdentity } from './once-object-types.js'
import type { StoredReply } from './types.js'

/** The answer of a free key, before it runs: the request id and attempt it runs as, and the row it replaces. */
export interface Free {
  kind: 'free'
  requestId: string
  attempt: number
  row: OnceRow | undefined
}

/** What a lease route's run needs of its `OnceObject`. */
export interface LeaseHost {
  records: () => OnceRecords
  /** Lookups whose lease route runs in this instance, with the run's token. */
  running: Map<string, string>
  waiters: Waiters
  /** The request the object's app gets for the forwarded one, with the run's token for `onceRoute()`. */
  request: (call: OnceCall, requestId: string, token: string, signal: AbortSignal) => Request
  /** Runs the object's app on it. */
  fetch: (request: Request) => Promise<Response> | Response
}

/**
 * Runs a lease route: the record is in flight while the app runs (duplicates
 * wait or get `in_flight`), then holds the final reply, or is released for a
 * retry. Past `maxRunMs` before the app answered, the key is released (the
 * app's signal aborts; the client gets a retryable 504). Once it answered a
 * final status the request took effect: nothing releases the key, and a
 * reply that breaks off or is still being read at `maxRunMs` is stored as
 * `reply-lost` (docs/once.md's rule, as `once()` keeps it).
 *
 * @param host - the object's records, running lease routes, waiters and app
 * @param call - the forwarded request
 * @param id - its identity
 * @param free - the free record it runs as
 * @returns the outcome
 * @example
 * return runLeased(this.#lease, call, id, seen)
 */
export async function runLeased(host: LeaseHost, call: OnceCall, id: OnceCallIdentity, free: Free): Promise<OnceAnswer> {
  const records = host.records()
  const { lookup } = id
  const { policy } = call
  const { requestId } = free
  const token = crypto.randomUUID()
  // Kept past its TTL while it may still run, so no sweep takes a running record.
  records.hold(lookup, free.row, id.fingerprint, requestId, free.attempt, token, Date.now() + policy.ttlMs + policy.maxRunMs)
  host.running.set(lookup, token)
  let timer: ReturnType<typeof setTimeout> | undefined
  // Aborted at maxRunMs, when the key is released: the handler's cue (c.req.raw.signal) to stop before it writes.
  const abandoned = new AbortController()
  const holds = () => records.holds(lookup, token)
  const release = () => {
    if (holds()) records.hold(lookup, undefined, id.fingerprint, requestId, free.attempt, null, Date.now() + policy.ttlMs)
  }
  /** Commits `stored` as the final reply, while this run still holds the key. */
  const commit = (stored: StoredReply, expiresAt: number) => {
    if (holds()) records.commit(lookup, undefined, id.fingerprint, requestId, free.attempt, stored, expiresAt)
  }
  /** What duplicates get when the route answered a final status (it took effect) and `why` no reply can be kept. */
  const kept = (status: number, why: string): OnceAnswer => {
    const expiresAt = Date.now() + policy.ttlMs
    const lost = lostReply(`The request took effect with status ${status}, but ${why}. It will not run again.`, requestId, id.key)
    commit(lost, expiresAt)
    return { kind: 'new', requestId, reply: lost, committed: true, expiresAt }
  }
  // This attempt's slot: an earlier attempt of the key, abandoned but still running, has its own token.
  expectAnswer(token)
  try {
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), policy.maxRunMs)))
    let res: Response | 'timeout'
    try {
      res = await Promise.race([host.fetch(host.request(call, requestId, token, abandoned.signal)), timeout])
    } catch (err) {
      // What Hono does not turn into an answer (a thrown non-Error), by the route or by middleware around it.
      const answered = answeredStatus(token)
      if (answered !== undefined && isFinalStatus(answered)) {
        console.error(`hono-once: the OnceObject app failed on ${requestId} after its route answered ${answered}`, err)
        return kept(answered, "the app then failed (its error is in the object's log)")
      }
      release()
      return { kind: 'new', requestId, reply: appFailed(err, requestId, id.key, WRITES.lease), committed: false, expiresAt: Date.now() + policy.ttlMs }
    }
    // The route's own answer, when onceRoute() saw it: middleware around the route may have answered another since.
    const answered = answeredStatus(token)
    if (answered !== undefined && isFinalStatus(answered) && (res === 'timeout' || !isFinalStatus(res.status))) {
      // It took effect; then middleware around it ran long, or failed (a 500 of Hono's): never released.
      return kept(answered, res === 'timeout' ? `the app did not finish within maxRunMs (${policy.maxRunMs} ms)` : `the app then answered ${res.status}`)
    }
    if (res === 'timeout') {
      console.warn(`hono-once: handler of ${requestId} ran past maxRunMs (${policy.maxRunMs} ms); its key is released`)
      release()
      abandoned.abort(new Error(`hono-once: the handler ran past maxRunMs (${policy.maxRunMs} ms); its key is released and a retry may run it again`))
      return { kind: 'timed_out', requestId }
    }
    if (!isFinalStatus(res.status) || !sendableStatus(res.status)) {
      // Nothing final, or nothing any reply can carry (a 101): the key is given back, whatever the reply's body does
      // (read within maxRunMs, else dropped).
      release()
      const bare = { status: res.status, headers: [] as [string, string][], body: new Uint8Array() }
      const read = await Promise.race([readReply(res, policy, requestId, id.key, WRITES.lease).catch(() => undefined), timeout])
      if (read === 'timeout') void res.body?.cancel().catch(() => {})
      return { kind: 'new', requestId, reply: read === 'timeout' || read === undefined ? bare : read.answer, committed: false, expiresAt: Date.now() + policy.ttlMs }
    }
    // A final status: it took effect. From here nothing releases the key; what cannot be read is reply-lost.
    let read: Awaited<ReturnType<typeof readReply>> | 'timeout' | 'broken'
    try {
      read = await Promise.race([readReply(res, policy, requestId, id.key, WRITES.lease), timeout])
    } catch (err) {
      console.error(`hono-once: the reply of ${requestId} broke off; duplicates get reply-lost`, err)
      read = 'broken'
    }
    if (read === 'timeout') return kept(res.status, `its reply was still being read at maxRunMs (${policy.maxRunMs} ms)`)
    if (read === 'broken') return kept(res.status, 'its reply could not be read')
    const expiresAt = Date.now() + policy.ttlMs
    commit(read.stored, expiresAt)
    return { kind: 'new', requestId, reply: read.answer, committed: true, expiresAt }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    forgetAnswer(token)
    if (host.running.get(lookup) === token) host.running.delete(lookup)
    host.waiters.wake(lookup)
  }
}
