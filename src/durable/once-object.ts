import { DurableObject } from 'cloudflare:workers'
import { v7 as uuidv7 } from 'uuid'
import { OnceRecords, type OnceRow } from './once-object-records.js'
import { findMethod, type ObjectMethod, runMethod } from './once-object-method.js'
import { BufferedRequest } from './buffered-request.js'
import { appFailed, readReply, Rollback, WRITES } from './once-object-reply.js'
import { LEASE_RUN_HEADER, leaseDeclared } from './once-object-route.js'
import { type Free, type LeaseHost, runLeased } from './once-object-lease.js'
import type { OnceAnswer, OnceCall, OnceCallIdentity, OnceMethodRequest, OnceObjectApi, OnceRecordInfo } from './once-object-types.js'
import type { StoredReply } from './types.js'
import { Waiters } from '../shared/waiters.js'
import { MISCONFIGURED, startupFault } from './schema.js'

/**
 * The Hono app of an {@link OnceObject}, as far as the object needs it
 * (`new Hono()` with any routes fits).
 */
export interface OnceObjectApp {
  fetch(request: Request, env?: unknown, executionCtx?: ExecutionContext): Response | Promise<Response>
  router: { match(method: string, path: string): unknown }
  /** The path the app routes a request by (Hono's `getPath`); the URL's pathname when absent. */
  getPath?(request: Request, options?: { env?: unknown }): string
}


/**
 * A SQLite-backed Durable Object whose state is the effect, with exactly-once
 * requests in one round trip (issue 19). The subclass defines a Hono app as
 * `app`, whose routes read and write `this.ctx.storage.sql`; `onceObject()`
 * at the edge sends it each request with its identity in one RPC
 * ({@link OnceObject.once}).
 *
 * A keyed request runs inside `this.ctx.storage.transaction()` with its body
 * already read, and its record (fingerprint and stored reply) is written
 * before the transaction closes: the app's writes and the record commit or
 * roll back together, so no crash can leave an effect without its record. A
 * non-final answer (5xx, 408, 429, or a throw) rolls the writes back and
 * releases the key for a retry. The transaction holds other requests to the
 * object while it runs, so routes whose handler calls out (a `fetch()`,
 * another object) declare `onceRoute({ lease: true })` and run under a
 * lease, as `once()` runs handlers.
 *
 * Records expire lazily (a dead record is never answered from; a few are
 * deleted during requests), so `alarm()` stays the subclass's own. A key is
 * unique within its object; its tables are named `once_*`.
 *
 * @typeParam Env - the Worker's bindings, as `this.env`
 * @example
 * import { Hono } from 'hono'
 * import { OnceObject } from 'hono-once'
 *
 * export class Account extends OnceObject<Env> {
 *   app = new Hono().post('/deposits', async (c) => {
 *     const { amount } = await c.req.json<{ amount: number }>()
 *     const { cents } = this.ctx.storage.sql
 *       .exec<{ cents: number }>('UPDATE balance SET cents = cents + ? RETURNING cents', amount)
 *       .one()
 *     return c.json({ balance: cents }, 201)
 *   })
 *
 *   constructor(ctx: DurableObjectState, env: Env) {
 *     super(ctx, env)
 *     ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS balance (cents INTEGER NOT NULL)')
 *     ctx.storage.sql.exec('INSERT INTO balance SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM balance)')
 *   }
 * }
 */
export abstract class OnceObject<Env = Cloudflare.Env> extends DurableObject<Env> implements OnceObjectApi {
  /**
   * The object's Hono app: its routes see the original request's method, path and headers (plus
   * `Once-Request-Id`). An object that serves only method calls (onceObject()'s `call` option) declares
   * `app = new Hono()`, without routes. Abstract, so that `app = new Hono()…` in a subclass needs no `override`.
   */
  protected abstract readonly app: OnceObjectApp

  readonly #table: OnceRecords | undefined
  /** Why this object cannot keep records (its class was migrated without SQLite storage), or undefined. */
  readonly #misconfigured: string | undefined
  /** Lease routes running in this instance, by lookup, with their token: memory that dies with the instance. */
  readonly #running = new Map<string, string>()
  /** Duplicates of a running lease route, woken when it commits or releases. */
  readonly #waiters = new Waiters()
  /** What a lease route's run needs of this object (once-object-lease.ts). */
  readonly #lease: LeaseHost = {
    records: () => this.#records,
    running: this.#running,
    waiters: this.#waiters,
    request: (call, requestId, token, signal) => this.#request(call, requestId, signal, token),
    fetch: (request) => this.#serve(request),
  }
  readonly #executionCtx: ExecutionContext
  /** The request id of the keyed method call running now, if any. */
  #calling: string | undefined

  /**
   * The stable id of the logical request a method call runs for, while the
   * method runs: the same on every attempt of one key, as the app's routes
   * read it from `Once-Request-Id`. Undefined outside a keyed method call
   * (an ungated call, an RPC of your own, the app).
   *
   * @example
   * pay(cents: number) {
   *   this.ctx.storage.sql.exec('INSERT INTO ledger (request_id, cents) VALUES (?, ?)', this.onceRequestId ?? null, -cents)
   *   return { paid: cents }
   * }
   */
  protected get onceRequestId(): string | undefined {
    return this.#calling
  }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    try {
      this.#table = new OnceRecords(ctx.storage.sql)
    } catch (err) {
      // Every call would fail the same way: callers get a 500 that says so, not a retryable 503 for ever.
      const why = startupFault(this.constructor.name, ctx.storage, err)
      if (why === undefined) throw err
      this.#misconfigured = why
    }
    this.#executionCtx = { waitUntil: (p) => ctx.waitUntil(p), passThroughOnException: () => {}, props: {} } as ExecutionContext
  }

  /**
   * Runs one request forwarded by `onceObject()`: the RPC behind it, one
   * round trip. A keyed request answers `new` (ran; committed with its
   * effects, or rolled back on a non-final status), `replay`, `mismatch` or
   * `in_flight`, as `once()` does; an ungated one runs without a record.
   *
   * @param call - the request, body read, with its identity and the edge's policy
   * @returns the outcome
   * @example
   * const answer = await env.ACCOUNT.get(id).once(call)
   */
  async once(call: OnceCall): Promise<OnceAnswer> {
    const now = Date.now()
    this.#records.sweep(now)
    const id = call.identity
    // A class without an app is misconfigured on every path, before anything runs: not the app's failure.
    const app = this.#app()
    if (!id) {
      try {
        const res = await this.#fetch(call, undefined)
        return { kind: 'plain', reply: (await readReply(res, { ...call.policy, maxReplyBytes: Number.MAX_SAFE_INTEGER }, '', '', WRITES.keyless)).answer }
      } catch (err) {
        // The app's failure (a thrown non-Error, a body that broke off), not the object's: nothing records the request.
        return { kind: 'plain', reply: appFailed(err, '', '', WRITES.keyless) }
      }
    }
    const deadline = now + call.policy.waitMs
    for (;;) {
      const seen = this.#classify(id, Date.now())
      if (seen.kind === 'free') {
        // Decided on the path the app routes by, however the client spelled it.
        return leaseDeclared(app, () => new Request(call.url, { method: call.method, headers: call.headers }), this.env) ? runLeased(this.#lease, call, id, seen) : this.#runAtomic(call, id)
      }
      if (seen.kind !== 'in_flight') return seen
      const left = deadline - Date.now()
      if (left <= 0) return seen
      await this.#waiters.waitFor(id.lookup, left)
    }
  }

  /**
   * Runs one method call forwarded by `onceObject(stubOf, { call })`: the
   * named method of the subclass runs synchronously with its record in one
   * `transactionSync()`, so its SQL writes and the record commit together
   * (one round trip, no lease, no `Request`, no Hono routing). A keyed call
   * answers `new`, `replay`, `mismatch` or `in_flight`, as {@link once}
   * does; an ungated one runs without a record.
   *
   * The method returns a JSON value (the body, with the edge's status) or an
   * `OnceReply` (its own status and headers). A non-final status (5xx, 408,
   * 429), a throw, or a returned promise (a method that awaits cannot be in
   * one synchronous transaction) rolls its writes back and leaves the key
   * free: the client gets that reply, or a `handler-failed` problem.
   *
   * @param request - the method, its arguments and the request's identity
   * @returns the outcome
   * @throws Error (`hono-once misconfigured: …`) when `method` is not a method of the subclass
   * @example
   * const answer = await env.ACCOUNT.get(id).onceCall({ method: 'deposit', args: [100], status: 201, identity, policy })
   */
  async onceCall(request: OnceMethodRequest): Promise<OnceAnswer> {
    const now = Date.now()
    this.#records.sweep(now)
    const method = findMethod(this, OnceObject.prototype, request.method)
    const id = request.identity
    if (!id) {
      try {
        return { kind: 'plain', reply: this.ctx.storage.transactionSync(() => this.#runMethod(method, request, '', '').answer) }
      } catch (err) {
        if (err instanceof Rollback) return { kind: 'plain', reply: err.answer }
        throw err
      }
    }
    const deadline = now + request.policy.waitMs
    for (;;) {
      const answer = this.#callOnce(method, request, id)
      // A lease route of the app with this key is still running: wait for it (up to waitMs), as once() does.
      const left = deadline - Date.now()
      if (answer.kind !== 'in_flight' || left <= 0) return answer
      await this.#waiters.waitFor(id.lookup, left)
    }
  }

  /** One try of a keyed method call: the record's answer, or the method run with its record in one transactionSync(). */
  #callOnce(method: ObjectMethod, request: OnceMethodRequest, id: OnceCallIdentity): OnceAnswer {
    let free: Free | undefined
    try {
      return this.ctx.storage.transactionSync((): OnceAnswer => {
        const now = Date.now()
        const seen = this.#classify(id, now)
        if (seen.kind !== 'free') return seen
        free = seen
        const { answer, stored } = this.#runMethod(method, request, seen.requestId, id.key)
        const expiresAt = now + request.policy.ttlMs
        this.#records.commit(id.lookup, seen.row, id.fingerprint, seen.requestId, seen.attempt, stored, expiresAt)
        return { kind: 'new', requestId: seen.requestId, reply: answer, committed: true, expiresAt }
      })
    } catch (err) {
      if (!(err instanceof Rollback) || !free) throw err
      return this.#rolledBack(request.policy, id, free, err.answer)
    }
  }

  /**
   * The state of the record of `lookup` (scope and key, as `onceObject()`
   * combines them). In tests, `objectRecord(stub, key, { scope })` from
   * `hono-once/testing` builds the lookup and calls it.
   *
   * @param lookup - the record's lookup key
   * @returns its state, or null when there is none or it expired
   * @example
   * import { objectRecord } from 'hono-once/testing'
   * await objectRecord(stub, 'dep-1') // { state: 'committed', status: 201, … }
   */
  async onceRecord(lookup: string): Promise<OnceRecordInfo | null> {
    const row = this.#records.get(lookup)
    if (!row || row.expires_at <= Date.now()) return null
    return { state: row.state, requestId: row.request_id, attempt: row.attempt, expiresAt: row.expires_at, status: row.status }
  }

  /**
   * Runs the object's app on a request without any record, as a plain
   * Durable Object `fetch()`.
   *
   * @param request - the request
   * @returns the app's response
   */
  override async fetch(request: Request): Promise<Response> {
    // Once-Request-Id and a lease run's token are the object's word: a caller's own never reach the app.
    if (request.headers.has('once-request-id') || request.headers.has(LEASE_RUN_HEADER)) {
      const headers = new Headers(request.headers)
      headers.delete('once-request-id')
      headers.delete(LEASE_RUN_HEADER)
      request = new Request(request, { headers })
    }
    return this.#serve(request)
  }

  /** What the record of a keyed request says now: an answer, or free to run. */
  #classify(id: OnceCallIdentity, now: number): OnceAnswer | Free {
    const row = this.#records.get(id.lookup)
    if (!row || row.expires_at <= now) return { kind: 'free', requestId: uuidv7(), attempt: 1, row }
    // While a record lives its key means one request, whatever its state: the first attempt may have taken effect.
    if (row.fingerprint !== id.fingerprint) return { kind: 'mismatch', requestId: row.request_id }
    if (row.state === 'committed') return { kind: 'replay', requestId: row.request_id, reply: this.#records.reply(id.lookup, row), expiresAt: row.expires_at }
    // A lease route running in this instance; one left in flight by an earlier instance died with it and is free.
    if (row.state === 'in_flight' && this.#running.has(id.lookup)) return { kind: 'in_flight', requestId: row.request_id }
    return { kind: 'free', requestId: row.request_id, attempt: row.attempt + 1, row }
  }

  /**
   * Runs the app and writes the record in one storage transaction: both commit, or neither does. The record is
   * read again inside it: the runtime starts the transaction's callback later than this call (a critical section
   * entered from a promise continuation), so another request may have run since the first look.
   */
  async #runAtomic(call: OnceCall, id: OnceCallIdentity): Promise<OnceAnswer> {
    let free: Free | undefined
    try {
      return await this.ctx.storage.transaction(async (): Promise<OnceAnswer> => {
        const seen = this.#classify(id, Date.now())
        if (seen.kind !== 'free') return seen
        free = seen
        let read: Awaited<ReturnType<typeof readReply>>
        try {
          read = await readReply(await this.#fetch(call, seen.requestId), call.policy, seen.requestId, id.key, WRITES.rolledBack)
        } catch (err) {
          // A thrown non-Error (Hono answers the rest), a body that broke off: rolled back, nothing applied.
          throw new Rollback(appFailed(err, seen.requestId, id.key, WRITES.rolledBack))
        }
        const { answer, stored, final } = read
        if (!final) throw new Rollback(answer)
        const expiresAt = Date.now() + call.policy.ttlMs
        this.#records.commit(id.lookup, seen.row, id.fingerprint, seen.requestId, seen.attempt, stored, expiresAt)
        return { kind: 'new', requestId: seen.requestId, reply: answer, committed: true, expiresAt }
      })
    } catch (err) {
      if (!(err instanceof Rollback) || !free) throw err
      return this.#rolledBack(call.policy, id, free, err.answer)
    }
  }

  /** Runs a method call with {@link onceRequestId} set while it runs (synchronously: no other call can see it). */
  #runMethod(method: ObjectMethod, request: OnceMethodRequest, requestId: string, key: string): ReturnType<typeof runMethod> {
    // A method may call another keyed method call of its own object: the outer one's id comes back after it.
    const outer = this.#calling
    this.#calling = requestId === '' ? undefined : requestId
    try {
      return runMethod(this, method, request, requestId, key)
    } finally {
      this.#calling = outer
    }
  }

  /**
   * After a rollback nothing took effect: the key keeps its fingerprint (422 for another body) and its request
   * id for the retry, and the client gets the reply that caused the rollback.
   */
  #rolledBack(policy: OnceCall['policy'], id: OnceCallIdentity, free: Free, reply: StoredReply): OnceAnswer {
    const expiresAt = Date.now() + policy.ttlMs
    this.#records.hold(id.lookup, free.row, id.fingerprint, free.requestId, free.attempt, null, expiresAt)
    return { kind: 'new', requestId: free.requestId, reply, committed: false, expiresAt }
  }

  /**
   * Runs the app on the forwarded request: the original method, URL and headers, with `Once-Request-Id` set when
   * keyed and removed when not (the header is the object's word, never the client's).
   */
  #fetch(call: OnceCall, requestId: string | undefined): Promise<Response> | Response {
    return this.#serve(this.#request(call, requestId))
  }

  /** Runs the subclass's app on `request`, with this object's env and execution context. */
  #serve(request: Request): Promise<Response> | Response {
    return this.#app().fetch(request, this.env, this.#executionCtx)
  }

  /**
   * The request the app gets for a forwarded one (see {@link #fetch}), with `signal` when given, and the token of a
   * lease route's run (for `onceRoute()`) when given: both headers are the object's, never the client's.
   */
  #request(call: OnceCall, requestId: string | undefined, signal?: AbortSignal, token?: string): Request {
    const headers = new Headers(call.headers)
    if (requestId !== undefined) headers.set('once-request-id', requestId)
    else headers.delete('once-request-id')
    if (token !== undefined) headers.set(LEASE_RUN_HEADER, token)
    else headers.delete(LEASE_RUN_HEADER)
    const bodyless = call.method === 'GET' || call.method === 'HEAD'
    return bodyless
      ? new Request(call.url, signal ? { method: call.method, headers, signal } : { method: call.method, headers })
      : new BufferedRequest(call.url, call.method, headers, call.body, signal)
  }

  /** The records table; throws the misconfiguration found at start-up, if any. */
  get #records(): OnceRecords {
    if (!this.#table) throw new Error(`${MISCONFIGURED} ${this.#misconfigured ?? 'no records table'}`)
    return this.#table
  }

  /** The subclass's app; a class without one (JavaScript, or a silenced type error) is a misconfiguration every request would meet. */
  #app(): OnceObjectApp {
    const app = this.app as OnceObjectApp | undefined
    if (typeof app?.fetch !== 'function') {
      throw new Error(`${MISCONFIGURED} ${this.constructor.name} has no app: give the OnceObject subclass a Hono app (app = new Hono().post(…)), or send its routes as method calls (onceObject()'s call option)`)
    }
    return app
  }
}
