import type { Context, MiddlewareHandler, Next } from 'hono'
import { checkContentDigest } from '../shared/content-digest.js'
import { parsePrincipal } from '../shared/principal.js'
import { verifyRequest } from '../shared/signature.js'
import { ONCE_HEADERS, SAFE_METHODS as SAFE } from '../shared/wire.js'
import { readOnceHeaders, type OnceRequestHeaders } from './headers.js'
import { runChain, withinDeadline, type ChainResult } from './chain.js'
import { KeyedLock } from './locks.js'
import { KnownNext } from './known-next.js'
import { applyingOuter, enterApply, type Outer, sameStore } from './nesting.js'
import { applied, problemAnswer, storeFailure } from './answers.js'
import { validateReceiverOptions, type ReceiverOptions } from './options.js'
import type { ApplyOutcome, ReceiverVariables, StoredReply } from './types.js'
import { readUpTo } from '../shared/read-limited.js'
import { replayResponse, restoreEncoded } from '../shared/reply.js'
import { Waiters } from '../shared/waiters.js'

const DEFAULT_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE']
const EMPTY = new Uint8Array()
/** What a `Once-Noop: ?1` slot answers, now and on every repeat. */
const NOOP_REPLY: StoredReply = { status: 204, headers: [], body: new Uint8Array() }
/** Receivers sharing a store share its locks. */
const locksByStore = new WeakMap<object, KeyedLock>()
/** …and learn from each other when a domain moves on (waiting on the domain's name). */
const advancedByStore = new WeakMap<object, Waiters>()
/** …and what they have seen of each domain's next sequence. */
const knownByStore = new WeakMap<object, KnownNext>()

/**
 * The origin's half of hono-once (DESIGN §6): Hono middleware for origin
 * servers, on Node (`@hono/node-server`) or Workers. For each request it
 *
 * - verifies the edge's RFC 9421 signature when `secrets` are set, from the
 *   headers alone (401 `signature-invalid`: none, unknown keyid, expired,
 *   created over 60 s ahead, a `Once-*` header not covered, or no match);
 *   then reads the body up to `maxBodyBytes` (413 `body-too-large`) and
 *   checks it against `Content-Digest` (400 when missing or different);
 * - dedupes every request but GET, HEAD, OPTIONS and TRACE that carries
 *   `Once-Request-Id`, whatever `methods` says: a repeat of an applied
 *   request gets the stored answer (status, headers, exact body) without
 *   running the handler; a repeat that arrives while the first runs waits for
 *   it, up to `waitMs`, else gets 409 `in-flight` with `Retry-After`;
 * - applies ordered requests (`Once-Domain` + `Once-Sequence`) one at a time,
 *   in sequence order per domain: a gap answers 409 with
 *   `Once-Expected-Sequence`, an old sequence its stored answer (without
 *   waiting for a later one of its domain that runs, once this process has
 *   seen the domain past it), and
 *   `Once-Noop: ?1` records the slot without running the handler (204);
 * - records a final answer (2xx, 3xx, 4xx but 408 and 429) in the same
 *   transaction as the handler's writes through `c.var.receiver.tx`; a Hono
 *   `HTTPException` with a final status is recorded as the answer without
 *   the writes made before the throw; a 5xx, 408 or 429 (an
 *   `HTTPException`'s too) and an answer marked `Once-Applied: ?0` (a
 *   relayed upstream's refusal) roll everything back and are passed on as
 *   given; any other thrown error, a handler that returns no response, or a
 *   final answer whose body fails while it is read, rolls back and answers
 *   500 `handler-failed`; a handler (with the reading
 *   of its answer) past `maxRunMs` is given up: 504 `handler-timeout`;
 * - steps aside, after its own checks, when another `onceReceiver()` on the
 *   same store is already applying the request (mounted twice, or in an app
 *   mounted under it with `app.mount()`): the handler gets the outer's `tx`;
 * - says on every answer to a deduped request whether it applied it:
 *   `Once-Applied: ?1` on a recorded or replayed answer (the no-op's 204 and
 *   `sequence-pruned` too), `?0` on every refusal and rollback.
 *
 * A request without `Once-Request-Id` passes through untouched when no
 * secret is set (it did not come through the edge: nothing dedupes it); with
 * secrets, one to a method in `methods` is refused with 401
 * `request-id-missing`. Malformed `Once-*` headers answer 400. Every error is
 * `application/problem+json`.
 *
 * The request body stays readable by the handler (`c.req.json()`, or
 * `c.req.raw` for forwarding). The handler's answer is buffered to be stored.
 *
 * @param options - see {@link ReceiverOptions}; validated here, a bad one throws a TypeError naming it
 * @returns the middleware; the handler of a deduped request finds `c.var.receiver` (undefined on a request passed through)
 * @example
 * import { serve } from '@hono/node-server'
 * import { Hono } from 'hono'
 * import { DatabaseSync } from 'node:sqlite'
 * import { onceReceiver, sqliteStore } from 'hono-once/origin'
 *
 * const db = new DatabaseSync('origin.db')
 * db.exec('CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
 * const app = new Hono()
 * const secrets = { ONCE_SIGNING_SECRET: process.env.ONCE_SIGNING_SECRET! }
 * app.post('/accounts/:id/deposits', onceReceiver({ store: sqliteStore(db), secrets }), async (c) => {
 *   // A malformed body is a final 400 (recorded), not a throw (500 handler-failed, which counts towards poison).
 *   const amount = ((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount
 *   if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return c.json({ error: 'amount: expected an integer' }, 400)
 *   const row = c.var.receiver.tx
 *     .prepare('INSERT INTO accounts VALUES (?, ?) ON CONFLICT DO UPDATE SET balance = balance + excluded.balance RETURNING balance')
 *     .get(c.req.param('id'), amount) as { balance: number }
 *   return c.json({ id: c.req.param('id'), balance: row.balance }, 201)
 * })
 * serve({ fetch: app.fetch, port: 9001 })
 */
export const onceReceiver = <Tx>(options: ReceiverOptions<Tx>): MiddlewareHandler<{ Variables: ReceiverVariables<Tx> }> => {
  validateReceiverOptions(options)
  const { store, secrets, waitMs = 5000, methods = DEFAULT_METHODS, gapWaitMs = 250, maxBodyBytes = 1024 * 1024, maxRunMs = 30_000 } = options
  const signed = secrets !== undefined
  const required = new Set(methods.map((m) => m.toUpperCase()))
  const locks = locksByStore.get(store) ?? new KeyedLock()
  locksByStore.set(store, locks)
  const advanced = advancedByStore.get(store) ?? new Waiters()
  advancedByStore.set(store, advanced)
  const known = knownByStore.get(store) ?? new KnownNext()
  knownByStore.set(store, known)

  /** `domain` has applied everything before `next`: its waiting requests go on. */
  function moved(domain: string, next: number) {
    known.raise(domain, next)
    advanced.wake(domain)
  }

  async function applyOnce(c: Context<{ Variables: ReceiverVariables<Tx> }>, next: Next, h: Extract<OnceRequestHeaders, { kind: 'ok' }>) {
    const instance = c.req.path
    const { requestId, domain, sequence, noop } = h
    const principal = parsePrincipal(c.req.raw.headers.get(ONCE_HEADERS.principal))
    const started = Date.now()
    const busy = (detail: string) => respond(c, problemAnswer('in-flight', { detail, instance, requestId, headers: { 'retry-after': '1' } }))

    /** One try at applying in turn: the response, or 'wait' when an earlier sequence has not arrived (unless `final`). */
    const applyInTurn = async (final = false): Promise<Response | undefined | 'wait'> => {
      let unlockDomain: (() => void) | undefined
      try {
        // A sequence known to be applied never runs again: it takes no turn, so a repeat (a lost answer, a catch-up)
        // gets its stored answer while a later request of its domain runs.
        if (domain !== undefined && !known.behind(domain, sequence!)) {
          unlockDomain = await locks.acquire(`domain\n${domain}`, Math.max(0, waitMs - (Date.now() - started)))
          if (!unlockDomain) return busy(`Domain ${JSON.stringify(domain)} is still applying an earlier request; retry after the delay given.`)
        }
        let outcome: ApplyOutcome
        /** What the chain gave when it is not an answer to record with its writes (set when the work rolls back). */
        let given: ChainResult | undefined
        const claim = { requestId, domain, sequence, noop }
        try {
          outcome = await store.apply(claim, async (tx) => {
            if (noop) return NOOP_REPLY
            const receiver = { requestId, key: h.key, domain, sequence, attempt: h.attempt, principal, tx }
            c.set('receiver', receiver)
            const leave = enterApply(c, { store, receiver, signed })
            given = await withinDeadline(runChain(c, next).finally(leave), maxRunMs)
            if (given.kind !== 'answer' || given.withoutWrites) return undefined
            respond(c, applied(stored(given.reply), true))
            return given.reply
          })
          if (outcome.kind === 'rolled-back' && given?.kind === 'answer') {
            // A thrown HTTPException: its answer is recorded without the writes it was thrown to abort, in a
            // transaction of its own (the first rolled them back; the locks are still held).
            const thrown = given.reply
            outcome = await store.apply(claim, async () => thrown)
            if (outcome.kind === 'applied') {
              if (domain !== undefined) moved(domain, sequence! + 1)
              return respond(c, applied(stored(thrown), true))
            }
          }
        } catch (err) {
          return respond(c, storeFailure(err, instance, requestId))
        }
        if (domain !== undefined) {
          // What the outcome tells of the domain's next sequence.
          if (outcome.kind === 'replay') known.raise(domain, sequence! + 1)
          else if (outcome.kind === 'gap') known.raise(domain, outcome.expected)
          else if (outcome.kind === 'pruned') known.raise(domain, outcome.next)
        }
        switch (outcome.kind) {
          case 'applied':
            if (domain !== undefined) moved(domain, sequence! + 1)
            return noop ? respond(c, applied(stored(NOOP_REPLY), true)) : undefined
          case 'rolled-back':
            if (given?.kind === 'timed-out') {
              return respond(
                c,
                problemAnswer('handler-timeout', {
                  detail: `The handler ran past maxRunMs (${maxRunMs} ms) and was given up: its writes were rolled back; send it again.`,
                  instance,
                  requestId,
                  headers: { 'retry-after': '1' },
                }),
              )
            }
            if (given?.kind === 'failed') {
              // The app threw, or gave no answer: nothing was applied, and the edge may count it towards poison (DESIGN §6).
              // What it threw goes to the origin's log, not to the client: Hono's own onError keeps it inside too.
              if (given.error !== undefined) console.error('hono-once: onceReceiver: the handler failed on request', requestId, given.error)
              const logged = given.error !== undefined ? " The origin's log has the error." : ''
              return respond(c, problemAnswer('handler-failed', { detail: `${given.detail}; its writes were rolled back.${logged}`, instance, requestId }))
            }
            // A 5xx, 408 or 429 of the app (an HTTPException's too), an answer that says nothing was applied: passed
            // on as it was given, rolled back, to be tried again.
            return respond(c, applied(c.res, false))
          case 'replay':
            // The SQL and D1 stores keep no `encoded` flag: told again from the bytes.
            return respond(c, applied(stored(await restoreEncoded(outcome.reply)), true))
          case 'gap':
            if (!final && gapWaitMs > 0) return 'wait'
            return respond(
              c,
              problemAnswer('sequence-gap', {
                detail:
                  outcome.expected === 1
                    ? `This origin has applied nothing of domain ${JSON.stringify(domain)} yet and needs sequence 1 first; got ${sequence}.`
                    : `This origin has applied domain ${JSON.stringify(domain)} up to sequence ${outcome.expected - 1} and needs ${outcome.expected} next; got ${sequence}.`,
                instance,
                requestId,
                expectedSequence: outcome.expected,
              }),
            )
          case 'conflict':
            return respond(c, problemAnswer('sequence-conflict', { detail: outcome.detail, instance, requestId }))
          case 'pruned':
            return respond(
              c,
              problemAnswer('sequence-pruned', {
                detail: `Sequence ${sequence} of domain ${JSON.stringify(domain)} was applied, but its record was pruned; its answer is gone.`,
                instance,
                requestId,
              }),
            )
        }
      } finally {
        unlockDomain?.()
      }
    }

    const unlockId = await locks.acquire(`id\n${requestId}`, waitMs)
    if (!unlockId) return busy(`Request ${requestId} is still being applied; retry after the delay given.`)
    try {
      for (;;) {
        const result = await applyInTurn()
        // Ahead of its turn: the earlier sequence may be on its way (concurrent requests overtake); wait for it a little.
        if (result !== 'wait') return result
        const left = gapWaitMs - (Date.now() - started)
        if (left <= 0) return (await applyInTurn(true)) as Response | undefined
        await advanced.waitFor(domain!, left)
      }
    } finally {
      unlockId()
    }
  }

  return async function onceReceiver(c, next) {
    // Mounted twice on a route (app.use and the route, a sub-app's own, an app.mount()ed app): the outer one has
    // verified, dedupes and orders; this one steps aside (it would wait for the outer's lock and answer in-flight,
    // which the outer would record; a mounted app sees another path, which its signature does not cover), handing
    // the handler the outer's transaction. Two stores on one route cannot both hold it.
    // A signed inner one under an unsigned outer verifies first (below): it was mounted to require the signature.
    const outer = applyingOuter(c, store)
    const stepAside = (o: Outer) => {
      if (!sameStore(o.store, store)) throw new Error('hono-once: two onceReceiver() with different stores run for one request; the handler can write through one transaction only')
      c.set('receiver', o.receiver as ReceiverVariables<Tx>['receiver'])
      return next()
    }
    if (outer !== undefined && (outer.signed || !signed)) return stepAside(outer)
    const instance = c.req.path
    const method = c.req.method.toUpperCase()
    const headers = c.req.raw.headers
    // From the headers alone, before a byte of the body is read: an outsider cannot make this origin buffer anything.
    if (signed) {
      const verdict = await verifyRequest(c.req.raw, { secrets })
      if (!verdict.ok) {
        return problemAnswer('signature-invalid', { detail: verdict.detail, instance, requestId: headers.get(ONCE_HEADERS.requestId) ?? undefined })
      }
    }
    // A read (a safe method) is never recorded (a hedged one may carry a request id for tracing): its Once-* headers are not checked.
    const h: OnceRequestHeaders = SAFE.has(method) ? { kind: 'none' } : readOnceHeaders(headers)
    if (h.kind === 'bad') return problemAnswer('bad-request', { detail: h.detail, instance })
    const deduped = h.kind === 'ok'
    if (h.kind === 'none' && signed && required.has(method)) {
      return problemAnswer('request-id-missing', {
        detail: `${method} requests need a ${ONCE_HEADERS.requestId}: with secrets set, only requests from the edge are accepted.`,
        instance,
      })
    }
    if (!signed && !deduped) return next()
    // The body is read (bounded) before the store is taken: a client that stalls mid-body must not hold up every other request.
    const requestId = h.kind === 'ok' ? h.requestId : undefined
    let body: Uint8Array | 'too-large'
    try {
      body = await readBody(c, maxBodyBytes)
    } catch {
      const detail = c.req.raw.bodyUsed
        ? 'The request body was read before onceReceiver() ran (by a middleware mounted before it): mount onceReceiver() first, so it can check the body against its digest.'
        : 'The request body could not be read.'
      return problemAnswer('bad-request', { detail, instance, requestId })
    }
    if (body === 'too-large') {
      return problemAnswer('body-too-large', { detail: `The request body is larger than this receiver's maxBodyBytes (${maxBodyBytes} bytes).`, instance, requestId })
    }
    if (signed) {
      const digest = await checkContentDigest(headers.get(ONCE_HEADERS.contentDigest), body)
      if (digest !== 'ok') {
        return problemAnswer('bad-request', {
          detail:
            digest === 'missing'
              ? `The request has no ${ONCE_HEADERS.contentDigest} with a sha-256 member; the signature covers the body through it.`
              : `The body does not match its ${ONCE_HEADERS.contentDigest}.`,
          instance,
          requestId,
        })
      }
    }
    if (!deduped || h.kind !== 'ok') return next()
    if (outer !== undefined) return stepAside(outer)
    return applyOnce(c, next, h)
  }
}

/**
 * Reads the body up to `max` bytes, leaving it readable for the handler
 * (`c.req.raw` rebuilt with the bytes). GET and HEAD have none.
 */
async function readBody(c: Context, max: number): Promise<Uint8Array | 'too-large'> {
  const raw = c.req.raw
  if (!raw.body || raw.method === 'GET' || raw.method === 'HEAD') return EMPTY
  const declared = Number(raw.headers.get('content-length') ?? Number.NaN)
  if (declared > max) {
    await raw.body.cancel().catch(() => {})
    return 'too-large'
  }
  const reader = raw.body.getReader()
  const body = await readUpTo(reader, max)
  if (!body) {
    await reader.cancel().catch(() => {})
    return 'too-large'
  }
  c.req.raw = new Request(raw, { body })
  return body
}


/**
 * A stored answer as a response, byte for byte, without the edge's replay
 * mark (the edge adds its own). The body is copied: a store may hand out a
 * view of memory it reuses.
 */
function stored(reply: StoredReply): Response {
  const copy: StoredReply = { status: reply.status, headers: reply.headers, body: new Uint8Array(reply.body) }
  // An answer the app encoded itself goes out as it is (on Workers, the runtime would encode it again).
  if (reply.encoded) copy.encoded = true
  return replayResponse(copy, false)
}

/** Sets the answer even after `next()` (Hono ignores a returned response once `c.res` is set), without merging the old headers. */
function respond(c: Context, res: Response): Response {
  c.res = undefined
  c.res = res
  return res
}
