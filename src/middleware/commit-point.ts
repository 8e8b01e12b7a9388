import type { Context } from 'hono'
import type { JsonValue, StoredReply } from '../durable/types.js'
import { CHUNK_BYTES } from '../durable/records.js'
import type { Admission } from './admission.js'
import type { OnceConfig } from './config.js'
import { OnceCommitError } from './errors.js'
import type { Identity } from './identify.js'
import { problem } from './problem.js'
import { isFinalStatus } from '../shared/applied.js'
import { captureReply, replayedByDefault, replayResponse, replyHead } from '../shared/reply.js'
import { cacheKeyOf } from './reply-cache.js'
import { answerWith, withCallerHeaders } from './caller-headers.js'
import { nextTurn, waitUntilOf } from '../shared/background.js'
import type { CommitOptions } from './types.js'

/**
 * Where a request stands relative to its roll-forward point. `applied`:
 * `commit()` was called (so the effect happened) but nothing is stored yet,
 * or storing it failed; `returned`: the handler returned a final status,
 * whose reply is being read and stored. From either on the key is never
 * released.
 */
type Phase = 'running' | 'applied' | 'returned' | 'provisional' | 'final' | 'abandoned'

let warnedArgs = false

/** The `reply-lost` records stored in place of what could not be kept ({@link CommitPoint}'s placeholders). */
const placeholders = new WeakSet<StoredReply>()

/**
 * The roll-forward point of one admitted request (seed 003; DESIGN §3.6):
 * `c.var.once.commit()` during the handler, then {@link finish} after it,
 * which stores the final reply, or releases the key when nothing final
 * happened.
 *
 * One rule decides, whether the handler returned its response or threw
 * (Hono's error handler turned the error into one): a final status (2xx,
 * 3xx, 4xx other than 408 and 429) is committed; 5xx, 408 and 429 release
 * the key so a retry runs again. A thrown non-`Error`, which Hono does not
 * handle, releases the key and propagates.
 *
 * And one rule past it: once `commit()` was called or the handler returned
 * a final status, the request took effect, and no later failure releases
 * the key. What cannot be kept (a reply over `maxReplyBytes`, `commit()`
 * args too large for a record or not JSON, a body that broke off, a commit
 * that could not be stored) is replaced by the one final problem
 * `reply-lost`, with the reason logged.
 *
 * @example
 * const point = new CommitPoint(config, id, admission)
 * c.set('once', { …, commit: point.commit })
 * await next()
 * await point.finish(c)
 */
export class CommitPoint {
  #phase: Phase = 'running'
  #reply: StoredReply | undefined
  /** {@link timedOut} answered for the request: what the handler's side does after it changes nothing (see {@link finish}). */
  #answered = false
  /** The final reply whose commit was sent (by {@link finish} or `commit(res)`): what the record holds if it landed. */
  #pending: StoredReply | undefined
  /** The final reply was answered and its commit goes on in the background (see {@link finish}). */
  committingAfterAnswer = false

  /**
   * @param config - resolved options
   * @param id - the request's identity
   * @param admission - its admission
   * @param caller - the headers the caller's middleware set before the handler ran
   * @param answersFirst - whether a final reply, as stored, may be answered before its commit lands (see
   *   {@link finish}): with `answerFirst`, on a route whose request the object keeps to resend only when it is
   *   `proxy()`'s answer to that request (its relay, or an ordered request's log entry), unchanged; on any other
   *   route always
   * @param appliedNothing - whether the route's answer is one `proxy()` passed on though no origin applied the
   *   request (an origin's refusal, an answer that never reached its receiver): the key is given back, whatever
   *   its status, as for any answer that applied nothing
   * @param resent - whether the object keeps the request to send it again should its commit never land (a
   *   `proxy()` relay, an ordered log entry): what a final reply that was not stored comes to
   */
  constructor(
    private readonly config: OnceConfig,
    private readonly id: Identity,
    private readonly admission: Admission,
    /** The caller's headers ({@link callerHeaders}), for the answers of once()'s own that replace the handler's. */
    private readonly caller: Headers,
    private readonly answersFirst: (reply: StoredReply) => boolean = () => false,
    private readonly appliedNothing: (res: Response) => boolean = () => false,
    private readonly resent = false,
  ) {}

  /**
   * `c.var.once.commit()`: stores `response` now (or, without one, marks the
   * request as taken effect). Resolves only once durably stored. Arguments
   * that cannot be stored do not make it fail: duplicates then get
   * `reply-lost` (logged), and the handler never runs again.
   *
   * @throws OnceCommitError when nothing was stored (the key stays taken)
   */
  readonly commit = async (response?: Response, options: CommitOptions = {}): Promise<void> => {
    if (this.#phase !== 'running') throw new Error('hono-once: c.var.once.commit() was already called for this request')
    // The effect happened: from here on the key is never released.
    this.#phase = 'applied'
    if (response) {
      const reply = await this.#capture(response.clone(), options.args)
      this.#pending = reply
      await this.#store(reply, false)
      this.#phase = 'final'
      this.#reply = reply
    } else {
      await this.#store(await this.#placeholder('The request took effect, but the server stopped before its reply was stored. It will not run again.'), true)
      this.#phase = 'provisional'
    }
  }

  /**
   * After the handler: past the roll-forward point, stores what the handler
   * returned (or answers with the reply committed earlier if it then
   * failed); before it, commits a final response or releases the key. A
   * final commit that fails is logged: the client still gets its answer,
   * which was not stored, so a retry after the lease may run the handler again.
   *
   * With `answerFirst` (the default) and a runtime that gives a `waitUntil`,
   * a final reply the handler returned is answered first and committed in
   * the background: one durable round trip on the client's path instead of
   * two. Nothing is lost by it that committing first would keep:
   * - a handler of the app's own (the object keeps no request to resend): a
   *   Worker that dies before the commit lands leaves the record running, as
   *   one that dies before it answers; its client, though, holds the answer;
   * - `proxy()`'s own answer (as stored: status, replayed headers, bytes
   *   unchanged) to the request stored with the admit (its relay, or its log
   *   entry in an ordering domain): the origins keep the answer under the
   *   request id, and if the commit never lands the stable area's alarm sends
   *   the stored request again when the lease ends and commits the answer the
   *   origins replay.
   * Any other answer on a route whose request the object keeps waits for its
   * commit (what the alarm would commit is not what the client got).
   * Duplicates meanwhile wait for the commit (`waitMs`), as for any request
   * still in flight.
   */
  async finish(c: Context): Promise<void> {
    if (this.#phase === 'abandoned') return
    const failed = !isFinalStatus(c.res.status) || this.appliedNothing(c.res)
    if (this.#phase === 'final') {
      // Past the roll-forward point the client gets what duplicates will: the committed reply, should the route answer
      // with a failure, or with another status (after commit(res), or after proxy() committed an applied answer). Only
      // the status is compared: the body may be a stream that never ends, and middleware inside once() may add headers
      // to the answer after the commit. A reply-lost stored for what could not be kept is for duplicates only: the
      // client still gets its final answer.
      const reply = this.#reply
      if (reply && reply.args === undefined && (failed || (!placeholders.has(reply) && c.res.status !== reply.status))) {
        if (!failed) console.warn(`hono-once: ${this.admission.requestId} answered ${c.res.status} after committing another reply (${reply.status}); the committed one is answered, as its duplicates get it`)
        answerWith(c, replayResponse(reply, false), this.caller)
      }
      return
    }
    if (this.#phase === 'running' && failed) return this.abandon()
    // A final status: it took effect. From here no failure, maxRunMs included, releases the key.
    if (this.#phase === 'running') this.#phase = 'returned'
    let captured: { reply: StoredReply; response: Response }
    if (this.#phase === 'applied' && failed) {
      // commit() was called and could not store; the handler then gave up. It took effect all the same.
      console.error(`hono-once: ${this.admission.requestId} called commit(), which was not stored, then answered ${c.res.status}; duplicates get reply-lost`)
      captured = { reply: await this.#placeholder(`The request took effect, but its reply could not be stored. It will not run again.`), response: c.res }
    } else {
      try {
        captured = await this.#captureFinal(c.res)
      } catch (err) {
        // A final status whose body broke off mid-stream: it took effect, but its reply is gone. Say so, for good.
        console.error(`hono-once: the reply of ${this.admission.requestId} could not be read; duplicates get reply-lost`, err)
        const reply = await this.#placeholder(`The request took effect with status ${c.res.status}, but its reply could not be read. It will not run again.`)
        captured = { reply, response: withCallerHeaders(replayResponse(reply, false), this.caller) }
      }
    }
    // Past maxRunMs while the reply was read: the client was answered, and what duplicates get is stored (timedOut).
    if (this.#answered) return
    const { reply, response } = captured
    c.res = undefined
    c.res = response
    // A handler's own reply, or proxy()'s answer as the origins keep it (nothing stored changed on the way); only with a waitUntil.
    const waitUntil = this.#phase === 'returned' && this.answersFirst(reply) ? waitUntilOf(c) : undefined
    if (waitUntil) {
      this.#phase = 'final'
      this.committingAfterAnswer = true
      this.admission.committingSoon()
      // Sent in the next turn, once the answer is in the runtime's hands: where the object shares this thread (as under
      // `wrangler dev`), its synchronous SQLite commit would otherwise hold the answer back. The lease is renewed (past
      // maxRunMs too: Admission.startRenewing), and an ordered write's comparison waits, until the commit lands or fails.
      waitUntil(
        nextTurn()
          .then(() => this.#store(reply, false))
          .catch((err: unknown) => this.#notStored(err))
          .finally(() => {
            this.admission.stopRenewing()
            this.admission.stopWaiting()
          }),
      )
      return
    }
    this.#pending = reply
    try {
      await this.#store(reply, false)
      this.#phase = 'final'
    } catch (err) {
      this.#notStored(err)
    }
  }

  /** Logs a final reply that was not stored, and what happens next. */
  #notStored(err: unknown): void {
    const after = this.resent ? "the alarm sends it again and commits the origins' answer once its lease ends" : 'a retry may run the handler again once its lease ends'
    console.error(`hono-once: the reply of ${this.id.key} (request ${this.admission.requestId}) was not stored; ${after}`, err)
  }

  /**
   * The handler threw what Hono does not handle (a non-`Error`). Before the
   * commit point the key is released, so the client's retry runs again;
   * after `commit()` was called, a `reply-lost` record is stored instead.
   */
  async abandon(): Promise<void> {
    if (this.#phase === 'applied' || this.#phase === 'provisional') return this.#keepApplied('its handler then threw')
    if (this.#phase !== 'running') return
    this.#phase = 'abandoned'
    await this.admission.release()
  }

  /**
   * The handler ran past `maxRunMs`: it is presumed dead. Before the commit
   * point the key is freed and the client told to retry; after it (`commit()`
   * was called, or the handler had returned a final status whose reply was
   * still being read, stored, or held by a middleware after `once()`), the
   * client gets what duplicates get: the committed reply, or `reply-lost`,
   * stored as final at once.
   *
   * @param answered - the response the handler set (`c.res` when one was set after once() ran), if any: a final
   *   status there is its answer, returned before the deadline
   */
  async timedOut(answered: Response | undefined): Promise<Response> {
    const { instance, key } = this.id
    this.#answered = true
    // The handler answered and something after it (a middleware after once(), the reply's stream) ran long.
    if (this.#phase === 'running' && answered && isFinalStatus(answered.status) && !this.appliedNothing(answered)) this.#phase = 'returned'
    // Its final reply's commit is still on its way, 30 s past maxRunMs (Admission's bound): no second commit is queued
    // behind it (reply-lost would wait as long); the client gets that reply, as a client answered first does.
    const pending = this.#pending
    if (pending && pending.args === undefined && this.admission.commitInFlight && (this.#phase === 'returned' || this.#phase === 'applied')) {
      console.error(`hono-once: the reply of ${this.admission.requestId} is answered before its commit, which has not landed; a retry may run the handler again if it never does`)
      return answered && this.#phase === 'returned' ? answered : withCallerHeaders(replayResponse(pending, false), this.caller)
    }
    if (this.#phase === 'applied' || this.#phase === 'returned' || this.#phase === 'provisional') {
      await this.#keepApplied(`its handler did not finish within ${this.config.maxRunMs} ms`)
    }
    if (this.#phase === 'final' && this.#reply && this.#reply.args === undefined) return replayResponse(this.#reply, false)
    if (this.#phase !== 'running') {
      this.#phase = 'abandoned'
      return problem('reply-lost', {
        detail: `The request took effect, but its handler did not finish within ${this.config.maxRunMs} ms. It will not run again.`,
        instance,
        idempotencyKey: key,
        requestId: this.admission.requestId,
      })
    }
    await this.abandon()
    return problem('handler-timeout', {
      detail: `The handler did not finish within ${this.config.maxRunMs} ms and was abandoned; retry with the same key.`,
      instance,
      idempotencyKey: key,
      requestId: this.admission.requestId,
      headers: { 'retry-after': '1' },
    })
  }

  /**
   * The request took effect (commit() was called, or the handler returned a final status) but no final reply is
   * stored, and none will come: store that it took effect, as final (best effort, logged), so duplicates get
   * `reply-lost` at once rather than a 409 until the lease lapses.
   */
  async #keepApplied(why: string): Promise<void> {
    const what = this.#phase === 'returned' ? 'returned a final status, whose reply was not stored' : this.#phase === 'provisional' ? 'called commit() without a reply' : 'called commit(), which was not stored'
    try {
      const { again } = await this.#store(await this.#placeholder('The request took effect, but its reply could not be stored. It will not run again.'), false)
      this.#phase = 'final'
      // The final reply's own commit, still on its way, landed first: the record holds it, and so is it answered.
      if (again && this.#pending) this.#reply = this.#pending
      else console.error(`hono-once: ${this.admission.requestId} ${what}, and ${why}; duplicates get reply-lost`)
    } catch (err) {
      console.error(`hono-once: the reply-lost record of ${this.admission.requestId} was not stored either; a retry after the lease may run the handler again`, err)
    }
  }

  /** Commits `reply`; `again`: the record was already final under this lease (another commit of it landed first). */
  async #store(reply: StoredReply, provisional: boolean): Promise<{ again: boolean }> {
    const stored = await this.admission.commit(reply, provisional, this.config.ttlMs)
    if (!stored.ok) throw new OnceCommitError(stored.reason, this.admission.requestId, { cause: stored.error })
    // Only a final reply enters a cache: a provisional one is replaced; and only the one the record holds (a second
    // final commit of this lease wrote nothing: a duplicate reads what is stored from the object).
    if (!provisional && stored.again === undefined) {
      this.config
        .cacheFor(this.id.ns)
        ?.set(cacheKeyOf(this.id), { fingerprint: this.id.fingerprint, requestId: this.admission.requestId, reply, expiresAt: stored.expiresAt })
    }
    return { again: stored.again === true }
  }

  /**
   * The reply to store for `res`: its bytes, or its arguments for
   * `onDuplicate`. Never throws: what cannot be stored (args over a record's
   * 1 MiB or not JSON, a body that breaks off) becomes a `reply-lost`
   * record, logged, since the request took effect either way.
   */
  async #capture(res: Response, args: JsonValue | undefined): Promise<StoredReply> {
    try {
      if (args !== undefined && this.config.onDuplicate) {
        const stored = storableArgs(args)
        if (typeof stored === 'string') {
          console.error(`hono-once: commit() args of ${this.admission.requestId} cannot be stored (${stored}); it took effect, and duplicates get reply-lost`)
          return await this.#placeholder(`The request took effect, but what its handler kept for duplicates (${stored}) could not be stored. It will not run again.`)
        }
        // The args stand for the body, which is never read: a reply too large to store may be larger than memory.
        return { ...replyHead(res, this.config.replayed), args: stored.args }
      }
      if (args !== undefined && !warnedArgs) {
        warnedArgs = true
        console.warn('hono-once: commit(res, { args }) without the onDuplicate option: the reply itself is stored and the args are ignored')
      }
      const { reply, response } = await this.#captureFinal(res)
      // This copy's client is the handler's own response: an unread rest here would be held for nobody.
      if (!response.bodyUsed) void response.body?.cancel().catch(() => {})
      return reply
    } catch (err) {
      console.error(`hono-once: the reply given to commit() by ${this.admission.requestId} could not be read; duplicates get reply-lost`, err)
      return this.#placeholder(`The request took effect with status ${res.status}, but its reply could not be read. It will not run again.`)
    }
  }

  /** Reads `res` into a stored reply; one over `maxReplyBytes` is replaced by a problem that says it took effect. */
  async #captureFinal(res: Response): Promise<{ reply: StoredReply; response: Response }> {
    const { reply, response, tooLarge } = await captureReply(res, this.config.replayed, this.config.maxReplyBytes)
    if (!tooLarge) return { reply, response }
    const max = this.config.maxReplyBytes
    console.warn(`hono-once: reply of ${this.admission.requestId} is over maxReplyBytes (${max} bytes); duplicates get a problem`)
    return {
      reply: await this.#placeholder(`The request took effect with status ${reply.status}, but its reply exceeds maxReplyBytes (${max} bytes) and was not stored. It will not run again.`),
      response,
    }
  }

  /** What duplicates get when the reply itself cannot be: a problem that says the request took effect. */
  async #placeholder(detail: string): Promise<StoredReply> {
    const { instance, key } = this.id
    const res = problem('reply-lost', { detail, instance, idempotencyKey: key, requestId: this.admission.requestId })
    const { reply } = await captureReply(res, replayedByDefault, Number.MAX_SAFE_INTEGER)
    placeholders.add(reply)
    return reply
  }
}

/**
 * `args` as a record stores them (their JSON round trip, so what
 * `onDuplicate` gets is what was stored), or why they cannot be: not JSON
 * (a cycle, a BigInt, a function), or over a record's 1 MiB.
 */
function storableArgs(args: JsonValue): { args: JsonValue } | string {
  let json: string | undefined
  try {
    json = JSON.stringify(args)
  } catch (err) {
    return `args are not JSON: ${err instanceof Error ? err.message : String(err)}`
  }
  if (json === undefined) return `args are not JSON: ${typeof args}`
  const size = new TextEncoder().encode(json).byteLength
  if (size > CHUNK_BYTES) return `args are ${size} bytes as JSON; at most ${CHUNK_BYTES} fit in a record`
  return { args: JSON.parse(json) as JsonValue }
}
