import type { Context, MiddlewareHandler, Next } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { StableArea } from '../durable/stable-area.js'
import type { AdmitResult, StableAreaApi, StoredReply } from '../durable/types.js'
import { fingerprint as defaultFingerprint } from './fingerprint.js'
import { Admission } from './admission.js'
import { defaultScope, lookupKey, shardName } from './identity.js'
import { parseIdempotencyKey } from './key.js'
import { type OnceOptions, validateOptions } from './options.js'
import { problem, problemException } from './problem.js'
import { captureReply, REPLAYED_HEADER, replayResponse } from './reply.js'
import { ReplyCache } from './reply-cache.js'
import type { CommitOptions, OnceContext, OnceVariables } from './types.js'

type Namespace = DurableObjectNamespace<StableArea>

const KEY_ERRORS = {
  empty: 'The Idempotency-Key header is empty.',
  'too-long': 'The Idempotency-Key is longer than 255 characters.',
  malformed: 'The Idempotency-Key must be a structured-field string ("...") or a bare token of printable ASCII.',
} as const

/**
 * Exactly-once middleware: each state-changing request with an
 * `Idempotency-Key` runs its handler once per key and tenant scope; every
 * duplicate gets the stored reply byte for byte, with
 * `Idempotent-Replayed: true`. The record lives in the `StableArea` Durable
 * Object, so it survives Worker crashes and object restarts; a Worker that
 * dies mid-request loses its lease, and the next retry runs the handler.
 *
 * Errors are RFC 9457 problems: 400 (key missing or malformed), 413 (body
 * too large), 422 (key reused for another request), 409 (still running),
 * 503 (stable area unreachable).
 *
 * @param options - see {@link OnceOptions}; validated here, a bad one throws
 * @returns the middleware
 * @example
 * import { Hono } from 'hono'
 * import { once, StableArea } from 'hono-once'
 *
 * const app = new Hono<{ Bindings: { ONCE: DurableObjectNamespace<StableArea> } }>()
 * app.post('/accounts/:id/deposits', once(), async (c) => {
 *   const { amount } = await c.req.json<{ amount: number }>()
 *   return c.json({ balance: await deposit(c.req.param('id'), amount) }, 201)
 * })
 * export { StableArea }
 * export default app
 */
export const once = (options: OnceOptions = {}): MiddlewareHandler<{ Variables: OnceVariables }> => {
  validateOptions(options, 'once()')
  const {
    namespace = (c: Context) => (c.env as { ONCE?: Namespace } | undefined)?.ONCE,
    shards = 1,
    methods = ['POST', 'PUT', 'PATCH', 'DELETE'],
    required = true,
    scope = (c: Context) => defaultScope(c.req.header('authorization')),
    fingerprint = {},
    ttlSeconds = 86_400,
    leaseMs = 30_000,
    inFlight = 'wait',
    waitMs = 10_000,
    maxBodyBytes = 1024 * 1024,
    maxReplyBytes = 8 * 1024 * 1024,
    replayHeaders,
    onDuplicate,
    replayCache = {},
  } = options
  const gated = new Set(methods.map((m) => m.toUpperCase()))
  const allow = replayHeaders && new Set(replayHeaders.map((h) => h.toLowerCase()))
  const ttlMs = ttlSeconds * 1000
  const caches = new WeakMap<Namespace, ReplyCache>()
  const limitBody = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => {
      throw problemException('body-too-large', {
        detail: `The request body is larger than ${maxBodyBytes} bytes.`,
        instance: c.req.path,
      })
    },
  })

  const fingerprintOf = (c: Context, body: Uint8Array): Promise<string> | string =>
    typeof fingerprint === 'function'
      ? fingerprint(c, body)
      : defaultFingerprint({ method: c.req.method, url: c.req.url, headers: c.req.raw.headers, body }, fingerprint)

  const cacheFor = (ns: Namespace): ReplyCache | undefined => {
    if (replayCache === false) return undefined
    let cache = caches.get(ns)
    if (!cache) caches.set(ns, (cache = new ReplyCache(replayCache)))
    return cache
  }

  /** Answers a duplicate from a stored reply, through `onDuplicate` when it stored arguments. */
  const replay = async (c: Context, reply: StoredReply, base: Omit<OnceContext, 'replayed' | 'commit'>): Promise<Response> => {
    if (reply.args === undefined) return replayResponse(reply)
    if (!onDuplicate) {
      return problem('misconfigured', {
        detail: 'This key stored duplicate-handler arguments, but once() has no onDuplicate option.',
        instance: c.req.path,
        idempotencyKey: base.key,
      })
    }
    c.set('once', { ...base, replayed: true, commit: () => Promise.reject(new Error('a replay cannot commit')) })
    const res = await onDuplicate(reply.args, c)
    const out = new Response(res.body, res)
    out.headers.set(REPLAYED_HEADER, 'true')
    return out
  }

  async function admitAndRun(c: Context, next: Next, key: string): Promise<Response | undefined> {
    const instance = c.req.path
    const body = new Uint8Array(await c.req.arrayBuffer())
    // Handlers that read or forward the raw request (a proxy's fetch(c.req.raw)) get the same bytes.
    if (c.req.raw.bodyUsed) c.req.raw = new Request(c.req.raw, { body })
    const tenant = await scope(c)
    const print = await fingerprintOf(c, body)
    if (typeof tenant !== 'string' || typeof print !== 'string' || print === '') {
      return problem('misconfigured', { detail: 'The scope and fingerprint options must return strings (the fingerprint non-empty).', instance })
    }
    const lookup = lookupKey(tenant, key)
    const ns = namespace(c)
    if (!ns || typeof ns.idFromName !== 'function') {
      return problem('misconfigured', {
        detail: 'No StableArea namespace: bind the StableArea class as ONCE in wrangler.toml, or pass the namespace option.',
        instance,
      })
    }
    const cache = cacheFor(ns)
    const mismatch = (requestId: string): Response =>
      problem('key-reused', {
        detail: 'This Idempotency-Key was already used for a different request (method, path or body differ).',
        instance,
        idempotencyKey: key,
        requestId,
      })

    const hit = cache?.get(lookup, Date.now())
    if (hit) {
      if (hit.fingerprint !== print) return mismatch(hit.requestId)
      return replay(c, hit.reply, { key, scope: tenant, requestId: hit.requestId, attempt: 0 })
    }

    const id = ns.idFromName(await shardName(lookup, shards))
    // Typed by its RPC surface: the generated stub type is too deep for the checker.
    const connect = (): StableAreaApi => ns.get(id) as unknown as StableAreaApi
    let admitted: AdmitResult
    try {
      admitted = await connect().admit({ lookup, fingerprint: print, leaseMs, ttlMs, waitMs: inFlight === 'wait' ? waitMs : 0 })
    } catch (err) {
      console.error('hono-once: admit failed', err)
      return problem('stable-area-unavailable', {
        detail: 'The idempotency store could not be reached; retry with the same key.',
        instance,
        idempotencyKey: key,
        headers: { 'retry-after': '1' },
      })
    }

    switch (admitted.kind) {
      case 'mismatch':
        return mismatch(admitted.requestId)
      case 'replay':
        cache?.set(lookup, { fingerprint: print, requestId: admitted.requestId, reply: admitted.reply, expiresAt: admitted.expiresAt })
        return replay(c, admitted.reply, { key, scope: tenant, requestId: admitted.requestId, attempt: 0 })
      case 'in_flight':
        return problem('in-flight', {
          detail: 'The first request with this key is still being processed; retry after the delay given.',
          instance,
          idempotencyKey: key,
          requestId: admitted.requestId,
          // The original may finish any moment: come back soon rather than at its lease's end.
          headers: { 'retry-after': '1' },
        })
      case 'new':
        break
    }

    const { requestId, attempt } = admitted
    const admission = new Admission(connect, lookup, admitted.token, requestId)
    const state: { committed: 'no' | 'provisional' | 'final'; reply?: StoredReply } = { committed: 'no' }

    const store = async (reply: StoredReply, provisional: boolean): Promise<void> => {
      const expiresAt = await admission.commit(reply, provisional, ttlMs)
      if (expiresAt !== undefined && !provisional) cache?.set(lookup, { fingerprint: print, requestId, reply, expiresAt })
    }

    /** What duplicates get when the reply itself cannot be: a problem that says the request took effect. */
    const lostReply = async (detail: string): Promise<StoredReply> =>
      (await captureReply(problem('reply-lost', { detail, instance, idempotencyKey: key, requestId }), undefined, maxReplyBytes)).reply

    const capture = async (res: Response, args: CommitOptions['args']): Promise<{ reply: StoredReply; response: Response }> => {
      const { reply, response, tooLarge } = await captureReply(res, allow, maxReplyBytes)
      if (args !== undefined) return { reply: { status: reply.status, headers: reply.headers, body: new Uint8Array(), args }, response }
      if (!tooLarge) return { reply, response }
      console.warn(`hono-once: reply of ${requestId} is ${reply.body.byteLength} bytes, over maxReplyBytes; duplicates get a problem`)
      const size = reply.body.byteLength
      return {
        reply: await lostReply(
          `The request took effect with status ${reply.status}, but its reply (${size} bytes) exceeds maxReplyBytes (${maxReplyBytes}) and was not stored. It will not run again.`,
        ),
        response,
      }
    }

    const commit = async (response?: Response, opts: CommitOptions = {}): Promise<void> => {
      if (state.committed !== 'no') throw new Error('hono-once: c.var.once.commit() was already called for this request')
      if (opts.args !== undefined && !onDuplicate) throw new Error('hono-once: commit({ args }) needs the onDuplicate option')
      if (response) {
        const { reply } = await capture(response.clone(), opts.args)
        state.committed = 'final'
        state.reply = reply
        await store(reply, false)
      } else {
        state.committed = 'provisional'
        await store(await lostReply('The request took effect, but the server stopped before its reply was stored. It will not run again.'), true)
      }
    }

    c.set('once', { key, scope: tenant, requestId, attempt, replayed: false, commit })
    const stopRenewing = admission.renewEvery(leaseMs)
    try {
      await next()
    } finally {
      stopRenewing()
    }

    const failed = c.error !== undefined || !isFinal(c.res.status)
    if (state.committed === 'final') {
      // Past the roll-forward point a failure answers with the committed reply.
      if (failed && state.reply && state.reply.args === undefined) {
        c.res = undefined
        c.res = replayResponse(state.reply)
        c.res.headers.delete(REPLAYED_HEADER)
      }
      return undefined
    }
    if (state.committed === 'no' && failed) {
      await admission.release()
      return undefined
    }
    const { reply, response } = await capture(c.res, undefined)
    c.res = undefined
    c.res = response
    await store(reply, false)
    return undefined
  }

  return async function once(c, next) {
    if (!gated.has(c.req.method)) return next()
    const header = c.req.header('idempotency-key')
    if (header === undefined) {
      if (!required) return next()
      throw problemException('key-missing', {
        detail: `${c.req.method} requests need an Idempotency-Key header, e.g. Idempotency-Key: "${crypto.randomUUID()}".`,
        instance: c.req.path,
      })
    }
    const parsed = parseIdempotencyKey(header)
    if (!parsed.ok) throw problemException('key-malformed', { detail: KEY_ERRORS[parsed.error], instance: c.req.path })
    const run = (): Promise<Response | undefined> => admitAndRun(c, next, parsed.key)
    return (await limitBody(c, run as () => Promise<void>)) as Response | undefined
  }
}

/** Final answers are committed; 5xx, 408 and 429 ask the client to come back, so they release the key. */
function isFinal(status: number): boolean {
  return status < 500 && status !== 408 && status !== 429
}
