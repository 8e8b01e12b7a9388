import type { Context, MiddlewareHandler, Next } from 'hono'
import { ONCE_HEADERS, signedPath, verifyOnceSignature, type SignatureFailure } from '../shared/wire.js'
import { readOnceHeaders, type OnceRequestHeaders } from './headers.js'
import { KeyedLock } from './locks.js'
import { validateReceiverOptions, type ReceiverOptions } from './options.js'
import { receiverProblem } from './problem.js'
import { captureReply, isFinal, replayResponse } from './reply.js'
import type { ApplyOutcome, ReceiverVariables, StoredReply } from './types.js'

const DEFAULT_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE']
/** What a `Once-Noop: ?1` slot answers, now and on every repeat. */
const NOOP_REPLY: StoredReply = { status: 204, headers: [], body: new Uint8Array() }
/** Receivers sharing a store share its locks. */
const locksByStore = new WeakMap<object, KeyedLock>()
/** …and learn from each other when a domain moves on. */
const signalsByStore = new WeakMap<object, DomainSignals>()

/** Wakes requests waiting for their domain to reach their sequence. */
class DomainSignals {
  readonly #waiting = new Map<string, Set<() => void>>()

  wait(domain: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(domain)
      if (!set) this.#waiting.set(domain, (set = new Set()))
      const waiters = set
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0) this.#waiting.delete(domain)
        resolve()
      }
      const timer = setTimeout(done, ms)
      waiters.add(done)
    })
  }

  notify(domain: string): void {
    for (const done of [...(this.#waiting.get(domain) ?? [])]) done()
  }
}

const SIGNATURE_DETAIL: Record<SignatureFailure, string> = {
  missing: `The ${ONCE_HEADERS.signature} header is missing: this origin accepts only requests signed by the edge.`,
  malformed: `The ${ONCE_HEADERS.signature} header is not "t=<unix seconds>,v1=<64 hex digits>".`,
  stale: `The ${ONCE_HEADERS.signature} timestamp is outside the accepted clock tolerance.`,
  mismatch: `The ${ONCE_HEADERS.signature} does not match this request (method, path, ${ONCE_HEADERS.requestId}, ${ONCE_HEADERS.domain}, ${ONCE_HEADERS.sequence} or body differ, or the secret).`,
}
/** When several secrets are live, the most telling failure is reported. */
const FAILURE_RANK: SignatureFailure[] = ['missing', 'malformed', 'mismatch', 'stale']

/**
 * The origin's half of hono-once (DESIGN §6): Hono middleware for origin
 * servers, on Node (`@hono/node-server`) or Workers. For each request to a
 * deduped method (POST, PUT, PATCH, DELETE by default) it
 *
 * - verifies `Once-Signature` when a `secret` is set (401 otherwise; safe
 *   methods too, then they pass through);
 * - dedupes by `Once-Request-Id`: a repeat of an applied request gets the
 *   stored answer (status, headers, exact body) without running the handler;
 *   a repeat that arrives while the first runs waits for it, up to `waitMs`,
 *   else gets 409 with `Retry-After`;
 * - applies ordered requests (`Once-Domain` + `Once-Sequence`) one at a time,
 *   in sequence order per domain: a gap answers 409 with
 *   `Once-Expected-Sequence`, an old sequence its stored answer, and
 *   `Once-Noop: ?1` records the slot without running the handler (204);
 * - records a final answer (2xx, 3xx, 4xx but 408 and 429) in the same
 *   transaction as the handler's writes through `c.var.receiver.tx`; a 5xx,
 *   408, 429 or a thrown error rolls everything back, so the edge's retry
 *   runs it again.
 *
 * A request to a deduped method without `Once-Request-Id` passes through
 * untouched when no secret is set (it did not come through the edge: nothing
 * dedupes it), and is refused with 401 when one is. Malformed `Once-*`
 * headers answer 400. Every error is `application/problem+json`.
 *
 * The request body stays readable by the handler (`c.req.json()`, or
 * `c.req.raw` for forwarding). The handler's answer is buffered to be stored.
 *
 * @param options - see {@link ReceiverOptions}; validated here, a bad one throws a TypeError naming it
 * @returns the middleware; the handler finds `c.var.receiver`
 * @example
 * import { serve } from '@hono/node-server'
 * import { Hono } from 'hono'
 * import { DatabaseSync } from 'node:sqlite'
 * import { onceReceiver, sqliteStore } from 'hono-once/origin'
 *
 * const db = new DatabaseSync('origin.db')
 * db.exec('CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
 * const app = new Hono()
 * app.post('/accounts/:id/deposits', onceReceiver({ store: sqliteStore(db), secret: process.env.ONCE_SECRET }), async (c) => {
 *   const { amount } = await c.req.json<{ amount: number }>()
 *   const row = c.var.receiver.tx
 *     .prepare('INSERT INTO accounts VALUES (?, ?) ON CONFLICT DO UPDATE SET balance = balance + excluded.balance RETURNING balance')
 *     .get(c.req.param('id'), amount) as { balance: number }
 *   return c.json({ id: c.req.param('id'), balance: row.balance }, 201)
 * })
 * serve({ fetch: app.fetch, port: 9001 })
 */
export const onceReceiver = <Tx>(options: ReceiverOptions<Tx>): MiddlewareHandler<{ Variables: ReceiverVariables<Tx> }> => {
  validateReceiverOptions(options)
  const { store, secret, toleranceSeconds = 300, waitMs = 5000, methods = DEFAULT_METHODS, gapWaitMs = 250 } = options
  const secrets = secret === undefined ? [] : typeof secret === 'string' ? [secret] : [...secret]
  const gated = new Set(methods.map((m) => m.toUpperCase()))
  const locks = locksByStore.get(store) ?? new KeyedLock()
  locksByStore.set(store, locks)
  const advanced = signalsByStore.get(store) ?? new DomainSignals()
  signalsByStore.set(store, advanced)

  /** Null when the signature is good; else the 401 (or 400 when the body cannot be read). */
  async function checkSignature(c: Context): Promise<Response | null> {
    let body: Uint8Array
    try {
      body = await readBody(c)
    } catch {
      return receiverProblem('bad-request', { detail: 'The request body could not be read.', instance: c.req.path })
    }
    const headers = c.req.raw.headers
    const input = {
      method: c.req.method,
      path: signedPath(c.req.url),
      requestId: headers.get(ONCE_HEADERS.requestId) ?? '',
      domain: headers.get(ONCE_HEADERS.domain) ?? '',
      sequence: headers.get(ONCE_HEADERS.sequence) ?? undefined,
      body,
    }
    let worst: SignatureFailure = 'missing'
    for (const s of secrets) {
      const verdict = await verifyOnceSignature(s, headers.get(ONCE_HEADERS.signature), input, { toleranceSeconds })
      if (verdict.ok) return null
      if (FAILURE_RANK.indexOf(verdict.reason) > FAILURE_RANK.indexOf(worst)) worst = verdict.reason
    }
    return receiverProblem('signature-invalid', { detail: SIGNATURE_DETAIL[worst], instance: c.req.path, requestId: input.requestId || undefined })
  }

  async function applyOnce(c: Context<{ Variables: ReceiverVariables<Tx> }>, next: Next, h: Extract<OnceRequestHeaders, { kind: 'ok' }>) {
    const instance = c.req.path
    const { requestId, domain, sequence, noop } = h
    const started = Date.now()
    const busy = (detail: string) => respond(c, receiverProblem('in-flight', { detail, instance, requestId, headers: { 'retry-after': '1' } }))

    const releaseId = await locks.acquire(`id\n${requestId}`, waitMs)
    if (!releaseId) return busy(`Request ${requestId} is still being applied; retry after the delay given.`)
    try {
      for (;;) {
        const result = await applyInTurn()
        // Ahead of its turn: the earlier sequence may be on its way (concurrent requests overtake); wait for it a little.
        if (result !== 'wait') return result
        const left = gapWaitMs - (Date.now() - started)
        if (left <= 0) return (await applyInTurn(true)) as Response | undefined
        await advanced.wait(domain!, left)
      }
    } finally {
      releaseId()
    }

    async function applyInTurn(final = false): Promise<Response | undefined | 'wait'> {
    let releaseDomain: (() => void) | undefined
    try {
      if (domain !== undefined) {
        releaseDomain = await locks.acquire(`domain\n${domain}`, Math.max(0, waitMs - (Date.now() - started)))
        if (!releaseDomain) return busy(`Domain ${JSON.stringify(domain)} is still applying an earlier request; retry after the delay given.`)
      }
      let outcome: ApplyOutcome
      try {
        outcome = await store.apply({ requestId, domain, sequence, noop }, async (tx) => {
          if (noop) return NOOP_REPLY
          c.set('receiver', { requestId, key: h.key, domain, sequence, attempt: h.attempt, tx })
          await next()
          if (c.error !== undefined || !isFinal(c.res.status)) return undefined
          const { reply, response } = await captureReply(c.res)
          respond(c, response)
          return reply
        })
      } catch (err) {
        console.error('hono-once: onceReceiver could not apply request', requestId, err)
        return respond(
          c,
          receiverProblem('store-unavailable', {
            detail: 'The request could not be recorded, so nothing was applied; retry with the same request id.',
            instance,
            requestId,
            headers: { 'retry-after': '1' },
          }),
        )
      }
      switch (outcome.kind) {
        case 'applied':
          if (domain !== undefined) advanced.notify(domain)
          return noop ? respond(c, replayResponse(NOOP_REPLY)) : undefined
        case 'rolled-back':
          return undefined
        case 'replay':
          return respond(c, replayResponse(outcome.reply))
        case 'gap':
          if (!final && gapWaitMs > 0) return 'wait'
          return respond(
            c,
            receiverProblem('sequence-gap', {
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
          return respond(c, receiverProblem('sequence-conflict', { detail: outcome.detail, instance, requestId }))
        case 'pruned':
          return respond(
            c,
            receiverProblem('sequence-pruned', {
              detail: `Sequence ${sequence} of domain ${JSON.stringify(domain)} was applied, but its record was pruned; its answer is gone.`,
              instance,
              requestId,
            }),
          )
      }
    } finally {
      releaseDomain?.()
    }
    }
  }

  return async function onceReceiver(c, next) {
    if (secrets.length > 0) {
      const refused = await checkSignature(c)
      if (refused) return refused
    }
    if (!gated.has(c.req.method)) return next()
    const h = readOnceHeaders(c.req.raw.headers)
    if (h.kind === 'bad') return receiverProblem('bad-request', { detail: h.detail, instance: c.req.path })
    if (h.kind === 'none') {
      if (secrets.length === 0) return next()
      return receiverProblem('request-id-missing', {
        detail: `${c.req.method} requests need a ${ONCE_HEADERS.requestId}: with a secret set, only requests from the edge are accepted.`,
        instance: c.req.path,
      })
    }
    // The body is read before the store is taken: a client that stalls mid-body must not hold up every other request.
    try {
      await readBody(c)
    } catch {
      return receiverProblem('bad-request', { detail: 'The request body could not be read.', instance: c.req.path })
    }
    return applyOnce(c, next, h)
  }
}

/** Reads the whole body, leaving it readable for the handler (`c.req.json()` from Hono's cache, `c.req.raw` rebuilt). */
async function readBody(c: Context): Promise<Uint8Array> {
  if (!c.req.raw.body) return new Uint8Array()
  const body = new Uint8Array(await c.req.arrayBuffer())
  if (c.req.raw.bodyUsed) c.req.raw = new Request(c.req.raw, { body })
  return body
}

/** Sets the answer even after `next()` (Hono ignores a returned response once `c.res` is set), without merging the old headers. */
function respond(c: Context, res: Response): Response {
  c.res = undefined
  c.res = res
  return res
}
