import type { StableArea } from '../durable/stable-area.js'
import { MISCONFIGURED, NO_SQLITE } from '../durable/schema.js'
import type { StableAreaApi } from '../durable/types.js'
import { problem } from './problem.js'

/** The StableArea namespace as a binding gives it. */
export type Namespace = DurableObjectNamespace<StableArea>

/**
 * What went wrong calling the stable area, as the runtime tells it:
 * - `misconfigured`: the binding is not a StableArea, or the class has no SQLite storage; every call fails alike;
 * - `overloaded`: the object is past its request rate; callers must back off, not retry at once;
 * - `retryable`: a transient fault (the object was reset, a network blip); one retry through a fresh stub may pass;
 * - `unavailable`: anything else.
 */
export type RpcFault = 'misconfigured' | 'overloaded' | 'retryable' | 'unavailable'

/**
 * Classifies an error thrown by a StableArea RPC. The flags are the ones
 * Cloudflare sets on Durable Object errors (`retryable`, `overloaded`).
 *
 * @param err - what the stub call threw
 * @returns its kind
 * @example
 * try { await stub.admit(req) } catch (err) { if (rpcFault(err) === 'retryable') … }
 */
export function rpcFault(err: unknown): RpcFault {
  const text = String(err)
  // The runtime's own word for a class migrated without SQLite storage: every call fails alike.
  if (text.includes(MISCONFIGURED) || /does not implement|not a function|RPC receiver|is not a Durable Object/i.test(text) || NO_SQLITE.test(text)) return 'misconfigured'
  const flags = (typeof err === 'object' && err !== null ? err : {}) as { retryable?: unknown; overloaded?: unknown }
  if (flags.overloaded === true) return 'overloaded'
  if (flags.retryable === true) return 'retryable'
  return 'unavailable'
}

/**
 * Why a Durable Object call failed for good ({@link rpcFault} `misconfigured`), in words a client may read: only
 * hono-once's own (`hono-once misconfigured: …`, the object's) or a fixed sentence; anything else may be the text
 * of a user class's error (its constructor's), which goes to the Worker's log instead.
 *
 * @param err - what the stub call threw
 * @returns the reason, without a final period
 * @example
 * misconfiguredWhy(new Error('hono-once misconfigured: Account has no app')) // 'Account has no app'
 */
export function misconfiguredWhy(err: unknown): string {
  const text = String(err)
  if (text.includes(MISCONFIGURED)) return text.slice(text.indexOf(MISCONFIGURED) + MISCONFIGURED.length).trim().replace(/\.$/, '')
  console.error('hono-once: a Durable Object binding cannot be used', err)
  return NO_SQLITE.test(text) ? 'its class has no SQLite storage' : "its class is not the one expected (the runtime's error is in the Worker's log)"
}

/**
 * Calls the stable area once, and once more through a fresh stub when the
 * runtime says the failure is retryable (a reset object breaks the stubs
 * that pointed at it). Overload and misconfiguration are never retried here.
 *
 * @param connect - makes a fresh stub
 * @param call - the RPC
 * @returns what the RPC returned
 * @throws the last error
 * @example
 * const result = await callWithRetry(connect, (stub) => stub.admit(request))
 */
export async function callWithRetry<T>(connect: () => StableAreaApi, call: (stub: StableAreaApi) => Promise<T>): Promise<T> {
  try {
    return await call(connect())
  } catch (err) {
    if (rpcFault(err) !== 'retryable') throw err
    return call(connect())
  }
}

/** Methods whose second application has the effect of one (RFC 9110 §9.2.2): a keyless one may be sent again. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * The answer a client gets when the stable area could not be used: a
 * non-retryable 500 for a misconfiguration (retrying cannot help), a 503
 * with a long jittered `Retry-After` for an overloaded object (so its
 * clients do not all come back at once), else a 503 with `Retry-After: 1`.
 * A keyless request (`onceObject()` passing it on) may have taken effect
 * and nothing tells a retry apart from a second request: its 503 says
 * `retryable: false` and no `Retry-After`, unless its method is idempotent.
 *
 * @param err - what the RPC threw
 * @param instance - the request path
 * @param key - the idempotency key; '' for a keyless request
 * @param method - the request's method, for a keyless request (none: read as a write)
 * @returns a problem+json response
 * @example
 * catch (err) { return rpcProblem(err, c.req.path, key) }
 */
export function rpcProblem(err: unknown, instance: string, key: string, method?: string): Response {
  const fault = rpcFault(err)
  if (fault === 'misconfigured') {
    return problem('misconfigured', {
      detail: `The StableArea binding cannot be used: ${misconfiguredWhy(err)}. Bind the StableArea class (declared under new_sqlite_classes) as ONCE, or pass the namespace option.`,
      instance,
    })
  }
  if (fault === 'overloaded') {
    // The object refused the call before running it: nothing ran, with or without a key.
    return problem('stable-area-unavailable', {
      detail: key === '' ? 'The object is overloaded; retry later.' : 'The idempotency store is overloaded; retry later with the same key.',
      instance,
      ...(key === '' ? {} : { idempotencyKey: key }),
      // 5–10 s: spread out, and within hono-once/client's default maxDelayMs (10 s), so the client waits it out rather than giving up.
      headers: { 'retry-after': String(5 + Math.floor(Math.random() * 6)) },
    })
  }
  if (key === '' && IDEMPOTENT.has(method?.toUpperCase() ?? '')) {
    return problem('stable-area-unavailable', {
      detail: `The object could not be reached. The request carried no Idempotency-Key and may have taken effect; ${method!.toUpperCase()} is idempotent, so a retry has the effect of one.`,
      instance,
      headers: { 'retry-after': '1' },
    })
  }
  if (key === '') {
    // onceObject() passing on a write without a key: nothing tells a retry apart from a second request.
    return problem('stable-area-unavailable', {
      detail: 'The object could not be reached. The request carried no Idempotency-Key: it may have taken effect, and a retry may apply it again.',
      instance,
      retryable: false,
    })
  }
  return problem('stable-area-unavailable', {
    detail: 'The idempotency store could not be reached; retry with the same key.',
    instance,
    idempotencyKey: key,
    headers: { 'retry-after': '1' },
  })
}
