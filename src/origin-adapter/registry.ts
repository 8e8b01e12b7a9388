import type { Context } from 'hono'
import type { RelayPlan } from './types.js'
import { heldRequest } from '../shared/request-body.js'

/** Handlers made by `proxy()`, with the relay plan for a method (undefined: nothing to relay) and their origin group. */
const proxies = new WeakMap<object, { planFor: (method: string) => RelayPlan | undefined; owner: object }>()
/** Whether any proxy() exists in this isolate: apps that use once() alone skip the route scan on every admit. */
let anyProxy = false

/**
 * Marks `handler` as a `proxy()` handler, so that `once()` in front of it
 * can store the relay with the admit instead of paying a round trip of its
 * own later.
 *
 * @param handler - the handler `proxy()` returns
 * @param planFor - the relay plan for a request method
 * @param owner - what sends it (the proxy's origin group): a dispatch sends the stored request only if it is its owner
 * @example
 * markProxy(handler, (method) => (method === 'GET' ? undefined : plan), group)
 */
export function markProxy(handler: object, planFor: (method: string) => RelayPlan | undefined, owner: object): void {
  proxies.set(handler, { planFor, owner })
  anyProxy = true
}

/**
 * The relay plan of the `proxy()` that handles this request right after
 * the current middleware (DESIGN §3: the relay rides on the admit). Only
 * the very next handler counts: a handler or middleware between `once()`
 * and `proxy()` (an app's own route in front of a catch-all `proxy()`, an
 * authorization check, a validator) may answer, refuse or change the
 * request itself, so the request stored for the alarm to resend would be
 * one the route may never have sent. Such a route is not relayed; a Worker
 * that dies in it leaves the key to the client's retry, which runs the
 * chain again (the origins dedupe by `Once-Request-Id`). The middleware
 * asking must be the route's handler itself, too: one composed with others
 * into a single handler (`hono/combine`'s `every(once(), authz)`) cannot see
 * what runs after it inside that handler, so it relays nothing.
 *
 * @param c - the request context, inside a middleware
 * @param self - the middleware asking (the function Hono was given)
 * @returns the plan and the proxy's origin group (`owner`), or undefined when the next handler is no proxy()
 * @example
 * const route = relayPlanOf(c, onceMiddleware) // in once(), before the admit
 */
export function relayPlanOf(c: Context, self: object): { plan: RelayPlan; owner: object } | undefined {
  // `matchedRoutes` is deprecated in favour of hono/route, which the oldest hono supported lacks.
  if (!anyProxy) return undefined
  const req = c.req as unknown as { matchedRoutes?: { handler: object }[]; routeIndex?: number }
  const index = req.routeIndex ?? 0
  const current = req.matchedRoutes?.[index]
  if (!current || unwrapped(current.handler) !== self) return undefined
  const next = req.matchedRoutes?.[index + 1]
  const marked = next && proxies.get(unwrapped(next.handler))
  if (!marked) return undefined
  const plan = marked.planFor(heldRequest(c).method)
  return plan && { plan, owner: marked.owner }
}

/**
 * The handler Hono wrapped: a sub-app mounted with `app.route()` that has
 * its own `onError` has each of its handlers wrapped in one that applies it,
 * and points to the original under `COMPOSED_HANDLER` (a string key in
 * today's hono, a symbol described `composedHandler` in 4.6).
 */
function unwrapped(handler: object): object {
  for (let h = handler, depth = 0; depth < 8; depth++) {
    const inner = composedOf(h)
    if (inner === undefined) return h
    h = inner
  }
  return handler
}

function composedOf(handler: object): object | undefined {
  const byName = (handler as Record<string, unknown>).__COMPOSED_HANDLER
  if (typeof byName === 'function') return byName
  for (const symbol of Object.getOwnPropertySymbols(handler)) {
    const value = (handler as Record<symbol, unknown>)[symbol]
    if (symbol.description === 'composedHandler' && typeof value === 'function') return value
  }
  return undefined
}
