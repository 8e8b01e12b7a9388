import type { Context, Env, MiddlewareHandler } from 'hono'
import type { OnceObject } from '../durable/once-object.js'
import type { OnceAnswer, OnceCall, OnceCallPolicy, OnceMethodRequest, OnceObjectApi } from '../durable/once-object-types.js'
import { MAX_RPC_BODY_BYTES, type StoredReply } from '../durable/types.js'
import { MISCONFIGURED } from '../durable/schema.js'
import { sendableStatus } from '../durable/once-object-reply.js'
import { optionsError } from '../shared/options.js'
import { resolveConfig } from './config.js'
import { readBody } from './body.js'
import { heldRequest } from '../shared/request-body.js'
import { answerWith, callerHeaders } from './caller-headers.js'
import { identify } from './identify.js'
import { readKey } from './key.js'
import type { OnceOptions } from './options.js'
import { validateOptions } from './options.js'
import { inFlight, problem, problemException } from './problem.js'
import { replayFilter, replayResponse } from '../shared/reply.js'
import { misconfiguredWhy, rpcFault, rpcProblem, type Namespace } from './rpc.js'

/**
 * The methods an `OnceObject` subclass `T` declares itself, which a method
 * call may name (not `once`, `onceCall`, `onceRecord`, `fetch`, `alarm`).
 */
export type OnceMethodName<T> = Exclude<
  { [K in keyof T]-?: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T],
  keyof OnceObject<unknown> | 'alarm' | 'webSocketMessage' | 'webSocketClose' | 'webSocketError'
> &
  string

/**
 * What onceObject()'s `call` option answers for a request: the method of the
 * object to run, its arguments (structured-clone data) and the status of its
 * reply (default 200; a method that returns an `OnceReply` sets its own).
 * Checked against the class's methods when `onceObject<E, Account>()` names
 * the class (TypeScript cannot infer it from a stub); any name otherwise,
 * checked by the object at run time (a 500 `misconfigured` for a bad one).
 *
 * @example
 * const deposit: OnceMethodCall<Account> = { method: 'deposit', args: [100], status: 201 }
 */
export type OnceMethodCall<T> = [OnceMethodName<T>] extends [never]
  ? { method: string; args: unknown[]; status?: number }
  : {
      [M in OnceMethodName<T>]: { method: M; args: T[M] extends (...args: infer A) => unknown ? A : never; status?: number }
    }[OnceMethodName<T>]

/**
 * Options of {@link onceObject}: the ones of `once()` that apply when the
 * record lives in the object itself (defaults as in `once()`), and `call`.
 *
 * `call` turns a request into a **method call**: instead of forwarding the
 * request to the object's Hono app, the edge names a synchronous method of
 * the object and its arguments, parsed here; the object runs it with its
 * record in one `transactionSync()` and answers its result as JSON. This is
 * the fastest path (no `Request`, no routing, no async transaction in the
 * object); the fingerprint is still of the request itself (method, path,
 * body).
 *
 * @example
 * // A malformed body is parsed without a throw (a throw here is Hono's 500): the method refuses it, a final 400.
 * app.post('/accounts/:id/deposits', onceObject(account, {
 *   call: async (c) => ({ method: 'deposit', args: [((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount], status: 201 }),
 * }))
 */
export type OnceObjectOptions<E extends Env = Env, T = OnceObject<unknown>> = OnceObjectOnceOptions & {
  /** Runs a method of the object instead of its app (see above); a throw here propagates to Hono's error handling. */
  call?: (c: Context<E>) => OnceMethodCall<T> | Promise<OnceMethodCall<T>>
}

/** The options of `once()` that {@link onceObject} takes. */
export type OnceObjectOnceOptions = Pick<
  OnceOptions,
  | 'methods'
  | 'required'
  | 'scope'
  | 'unscoped'
  | 'fingerprint'
  | 'ttlSeconds'
  | 'maxRunMs'
  | 'inFlight'
  | 'waitMs'
  | 'maxBodyBytes'
  | 'maxReplyBytes'
  | 'replayHeaders'
  | 'replayCache'
>

/**
 * The stub `onceObject()` calls: a `DurableObjectStub` of an `OnceObject`
 * subclass. Typed by the class, not by the stub's shape: the generated stub
 * type is too deep for the checker to compare.
 */
export type OnceObjectStub<T extends OnceObject<unknown> = OnceObject<unknown>> = DurableObjectStub<T>

const ALLOWED: ReadonlySet<string> = new Set<keyof OnceObjectOptions>([
  'call',
  'methods',
  'required',
  'scope',
  'unscoped',
  'fingerprint',
  'ttlSeconds',
  'maxRunMs',
  'inFlight',
  'waitMs',
  'maxBodyBytes',
  'maxReplyBytes',
  'replayHeaders',
  'replayCache',
])

/**
 * Exactly-once in one round trip, for state that lives in a Durable Object
 * (issue 19): the edge half of an {@link OnceObject}. It does `once()`'s
 * front half here (key parsing, scope, fingerprint, problem+json errors,
 * the isolate's cache of committed replies), then sends the request, body
 * read, with its identity to `stubOf(c)` in **one** RPC. The object runs
 * its app and writes the record in one transaction and answers as `once()`
 * does: the reply, a replay (`Idempotent-Replayed: true`), 422 for a key
 * reused with another request, 409 (or a bounded wait) while a lease route
 * with the key still runs. Clients (`hono-once/client`) work unchanged.
 *
 * A key is unique within its object: route each key's requests to one
 * object (e.g. the account named in the path), as `stubOf` does.
 *
 * Errors are RFC 9457 problems: 400 (key missing or malformed), 413 (body
 * too large), 422, 409, 503 (the object unreachable or overloaded), 504 (a
 * lease route past `maxRunMs`), 500 (misconfigured: `stubOf` threw, or the
 * object is not an `OnceObject`).
 *
 * @param stubOf - the stub of the object that owns the request; type its context (`Context<{ Bindings }>`), which Hono cannot infer here
 * @param options - see {@link OnceObjectOptions}; validated here, a bad one throws
 * @returns a Hono handler
 * @throws TypeError naming a bad option
 * @example
 * import { type Context, Hono } from 'hono'
 * import { onceObject } from 'hono-once'
 *
 * type Bindings = { ACCOUNT: DurableObjectNamespace<Account> }
 * const account = (c: Context<{ Bindings: Bindings }>) => c.env.ACCOUNT.get(c.env.ACCOUNT.idFromName(c.req.param('id') ?? ''))
 * const app = new Hono<{ Bindings: Bindings }>()
 * app.post('/accounts/:id/*', onceObject(account))
 */
export function onceObject<E extends Env, T extends OnceObject<unknown>>(
  stubOf: (c: Context<E>) => OnceObjectStub<T>,
  options: OnceObjectOptions<E, T> = {},
): MiddlewareHandler<E> {
  if (typeof stubOf !== 'function') throw optionsError('onceObject()', ['stubOf: expected a function that returns the stub of an OnceObject'])
  const { call: methodOf, ...onceOptions } = options ?? {}
  if (methodOf !== undefined && typeof methodOf !== 'function') throw optionsError('onceObject()', ['call: expected a function (c) => ({ method, args, status? })'])
  validateOptions(onceOptions, 'onceObject()')
  const foreign = Object.keys(options ?? {}).filter((k) => !ALLOWED.has(k))
  if (foreign.length > 0) throw optionsError('onceObject()', foreign.map((k) => `${k}: not an option of onceObject() (the record lives in the object)`))
  if ((onceOptions.maxBodyBytes ?? 0) > MAX_RPC_BODY_BYTES) {
    throw optionsError('onceObject()', [`maxBodyBytes: at most ${MAX_RPC_BODY_BYTES} (32 MiB less 256 KiB) here: the body travels to the object in one RPC, which carries at most 32 MiB`])
  }
  // once()'s front half finds "its" stable area through the namespace option; here the records live in the
  // object, so the namespace is an anchor only: one reply cache per onceObject() instance hangs off it.
  const anchor = { idFromName: () => { throw new Error('hono-once: onceObject() has no StableArea') } } as unknown as Namespace
  const config = resolveConfig({ ...onceOptions, namespace: () => anchor })
  const cache = config.cacheFor(anchor)
  let policy: OnceCallPolicy | undefined

  /** The stub for a request, or a StubError when `stubOf` threw. */
  const connect = (c: Context<E>): OnceObjectApi => {
    try {
      return stubOf(c) as unknown as OnceObjectApi
    } catch (err) {
      throw new StubError(err)
    }
  }

  /** Sends a request or a method call to the object. */
  const send = (stub: OnceObjectApi, request: OnceCall | OnceMethodRequest): Promise<OnceAnswer> =>
    'args' in request ? stub.onceCall(request) : stub.once(request)

  /**
   * Calls the object once, and once more through a fresh stub when the runtime says that may pass and a second
   * delivery is safe: a keyed request (its key), or a GET or HEAD through the app. Any other request without a key
   * is never sent twice: it may have taken effect.
   */
  const call = async (c: Context<E>, stub: OnceObjectApi, request: OnceCall | OnceMethodRequest): Promise<OnceAnswer> => {
    try {
      return await send(stub, request)
    } catch (err) {
      const safe = request.identity !== undefined || ('url' in request && (request.method === 'GET' || request.method === 'HEAD'))
      if (!safe || rpcFault(err) !== 'retryable') throw err
      return send(connect(c), request)
    }
  }

  /**
   * What the object is asked to do: run its app on the request, or, with the `call` option, one of its methods
   * (a Response when the option's answer is not a method call).
   */
  const requestOf = async (c: Context<E>, body: Uint8Array, identity: OnceCall['identity']): Promise<OnceCall | OnceMethodRequest | Response> => {
    const policy = policyOf()
    if (!methodOf) {
      // The request as it came: no edge handler runs after this, so nothing here makes the handler's copy of it.
      const sent = heldRequest(c)
      const request: OnceCall = { method: sent.method, url: sent.url, headers: [...sent.headers], body, policy }
      if (identity) request.identity = identity
      return request
    }
    const target = (await methodOf(c)) as { method?: unknown; args?: unknown; status?: unknown } | null | undefined
    const status = target?.status ?? 200
    if (typeof target?.method !== 'string' || !Array.isArray(target.args) || typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
      return problem('misconfigured', {
        detail: 'The call option of onceObject() must return { method: string, args: unknown[], status?: 200–599 }.',
        instance: c.req.path,
      })
    }
    const request: OnceMethodRequest = { method: target.method, args: target.args as unknown[], status, policy }
    if (identity) request.identity = identity
    return request
  }

  /** The same for every request of this onceObject(): built once. */
  const policyOf = (): OnceCallPolicy =>
    (policy ??= {
      ttlMs: config.ttlMs,
      waitMs: config.waitMs,
      maxRunMs: config.maxRunMs,
      maxReplyBytes: config.maxReplyBytes,
      allow: config.allow && [...config.allow],
    })

  const failed = (err: unknown, instance: string, key: string, method?: string): Response => {
    if (err instanceof StubError) {
      console.error('hono-once: the stubOf function of onceObject() threw', err.cause)
      return problem('misconfigured', { detail: "The stubOf function of onceObject() threw (its error is in the Worker's log, not in answers: it may hold secrets).", instance })
    }
    console.error('hono-once: the OnceObject call failed', err)
    // Over the runtime's limit for one RPC (the call option's arguments; a body is held under it): no retry can pass.
    if (TOO_LARGE_FOR_RPC.test(String(err))) {
      return problem('body-too-large', {
        detail: `The request is larger than one call to the object can carry (${String(err).replace(/^\w*Error: /, '')}).`,
        instance,
      })
    }
    // Only the call option's arguments can fail to serialise (the rest is plain data): no retry can pass.
    if ((err as { name?: unknown } | null)?.name === 'DataCloneError') {
      return problem('misconfigured', {
        detail: `The arguments the call option of onceObject() returned cannot be sent to the object: ${String(err).replace(/^DataCloneError: /, '')}. Use structured-clone data.`,
        instance,
      })
    }
    // The object's own word (a method the call option may not name): passed on as it is.
    const text = String(err)
    if (text.includes(MISCONFIGURED)) return problem('misconfigured', { detail: text.slice(text.indexOf(MISCONFIGURED) + MISCONFIGURED.length).trim(), instance })
    if (rpcFault(err) === 'misconfigured') {
      return problem('misconfigured', {
        detail: `The object onceObject() calls cannot be used: ${misconfiguredWhy(err)}. stubOf must return the stub of a class that extends OnceObject, declared under new_sqlite_classes.`,
        instance,
      })
    }
    return rpcProblem(err, instance, key, method)
  }

  const keyed = async (c: Context<E>, key: string): Promise<Response> => {
    const id = await identify(c, config, key)
    if (id instanceof Response) return id
    const { fingerprint, instance } = id
    let stub: OnceObjectApi
    try {
      stub = connect(c)
    } catch (err) {
      return failed(err, instance, key)
    }
    // A key is unique within its object: the cache tells objects apart by their id.
    const lookup = `${objectIdOf(stub)}\n${id.lookup}`
    const mismatch = (requestId: string) =>
      problem('key-reused', {
        detail: 'This Idempotency-Key was already used for a different request (method, path or body differ).',
        instance,
        idempotencyKey: key,
        requestId,
      })
    const hit = cache?.get(lookup, Date.now())
    if (hit) return hit.fingerprint === fingerprint ? sent(hit.reply, true, instance) : mismatch(hit.requestId)

    const request = await requestOf(c, id.body, { key, lookup: id.lookup, fingerprint })
    if (request instanceof Response) return request
    let answer: OnceAnswer
    try {
      answer = await call(c, stub, request)
    } catch (err) {
      return failed(err, instance, key)
    }
    switch (answer.kind) {
      case 'new': {
        // A reply over maxReplyBytes was stored as a problem: duplicates fetch that from the object.
        if (answer.committed && answer.reply.body.byteLength <= config.maxReplyBytes) {
          cache?.set(lookup, { fingerprint, requestId: answer.requestId, reply: kept(answer.reply, config.allow), expiresAt: answer.expiresAt })
        }
        return sent(answer.reply, false, instance)
      }
      case 'replay':
        cache?.set(lookup, { fingerprint, requestId: answer.requestId, reply: answer.reply, expiresAt: answer.expiresAt })
        return sent(answer.reply, true, instance)
      case 'mismatch':
        return mismatch(answer.requestId)
      case 'in_flight':
        return inFlight(instance, key, answer.requestId)
      case 'timed_out':
        return problem('handler-timeout', {
          detail: `The handler did not finish within ${config.maxRunMs} ms and was abandoned; retry with the same key.`,
          instance,
          idempotencyKey: key,
          requestId: answer.requestId,
          headers: { 'retry-after': '1' },
        })
      case 'plain':
        return sent(answer.reply, false, instance)
    }
  }

  const plain = async (c: Context<E>): Promise<Response> => {
    const bodyless = c.req.method === 'GET' || c.req.method === 'HEAD'
    let body = new Uint8Array()
    if (!bodyless) {
      try {
        body = new Uint8Array(await c.req.arrayBuffer())
      } catch (err) {
        // hono before 4.10 errors the stream of a chunked body past maxBodyBytes instead of answering itself.
        if (err instanceof Error && err.name === 'BodyLimitError') {
          return problem('body-too-large', { detail: `The request body is larger than ${config.maxBodyBytes} bytes.`, instance: c.req.path })
        }
        throw err
      }
    }
    const request = await requestOf(c, body, undefined)
    if (request instanceof Response) return request
    let answer: OnceAnswer
    try {
      answer = await call(c, connect(c), request)
    } catch (err) {
      return failed(err, c.req.path, '', c.req.method)
    }
    // Outside the call's try: the object was reached, and what this middleware builds of its answer is no RPC fault.
    return sent(answer.kind === 'plain' || answer.kind === 'new' ? answer.reply : NO_REPLY, false, c.req.path)
  }

  return async function onceObject(c) {
    // Every answer is the object's or this middleware's own: the caller's headers go onto it (caller-headers.ts).
    const caller = callerHeaders(c)
    return answerWith(c, await answer(c), caller)
  }

  async function answer(c: Context<E>): Promise<Response> {
    const key = config.gated.has(c.req.method) ? readKey(c as Context, config) : undefined
    // A gated method with its key gets a record, a GET among `methods` too (as once() does).
    if (key !== undefined) return keyed(c, key)
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return plain(c)
    // A keyless body is held to maxBodyBytes too: read within the limit (a 413 otherwise), then sent as it is.
    await readBody(c as Context, config.maxBodyBytes)
    return plain(c)
  }
}

/** The id of the object a stub points at ('' for a stub without one). */
function objectIdOf(stub: OnceObjectApi): string {
  return (stub as { id?: { toString(): string } }).id?.toString() ?? ''
}

/** What `stubOf` threw, told apart from what the object's call threw. */
class StubError extends Error {
  constructor(override readonly cause: unknown) {
    super('stubOf threw')
  }
}

/** workerd's error for an RPC whose arguments or result serialise past its limit (32 MiB). */
const TOO_LARGE_FOR_RPC = /RPC arguments or return values are limited/i

const NO_REPLY: StoredReply = { status: 500, headers: [], body: new Uint8Array() }

/**
 * A reply of the object as the client gets it: the first answer as the app gave it, or a replay (marked
 * `Idempotent-Replayed: true`). One that no `Response` can carry (a 101, kept by an object of an older release) is
 * a `handler-failed` problem, never a crash.
 */
function sent(reply: StoredReply, replayed: boolean, instance: string): Response {
  if (sendableStatus(reply.status)) return replayResponse(reply, replayed)
  console.error(`hono-once: the OnceObject answered status ${reply.status}, which no Response can carry`)
  return problem('handler-failed', {
    detail: `The object answered ${reply.status}, which onceObject() cannot pass on (a WebSocket does not travel in its RPC: serve the object's WebSockets through its stub's fetch()). What the request wrote may stay.`,
    instance,
  })
}

/** The reply as duplicates get it: only the headers the replay rules keep (the object stored the same). */
function kept(reply: StoredReply, allow: ReadonlySet<string> | undefined): StoredReply {
  const keep = replayFilter(allow)
  return { ...reply, headers: reply.headers.filter(([name]) => keep(name)) }
}
