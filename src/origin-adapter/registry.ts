import type { Context } from 'hono'
import type { RelayPlan } from './types.js'

/** Handlers made by `proxy()`, with the relay plan for a method (undefined: nothing to relay). */
const proxies = new WeakMap<object, (method: string) => RelayPlan | undefined>()
/** Whether any proxy() exists in this isolate: apps that use once() alone skip the route scan on every admit. */
let anyProxy = false

/**
 * Marks `handler` as a `proxy()` handler, so that `once()` in front of it
 * can store the relay with the admit instead of paying a round trip of its
 * own later.
 *
 * @param handler - the handler `proxy()` returns
 * @param planFor - the relay plan for a request method
 * @example
 * markProxy(handler, (method) => (method === 'GET' ? undefined : plan))
 */
export function markProxy(handler: object, planFor: (method: string) => RelayPlan | undefined): void {
  proxies.set(handler, planFor)
  anyProxy = true
}

/**
 * The relay plan of the `proxy()` that will handle this request after the
 * current middleware, if Hono matched one (DESIGN §3: the relay rides on
 * the admit).
 *
 * @param c - the request context, inside a middleware
 * @returns the plan, or undefined when no proxy() handles the request
 * @example
 * const plan = relayPlanOf(c) // in once(), before the admit
 */
export function relayPlanOf(c: Context): RelayPlan | undefined {
  // `matchedRoutes` is deprecated in favour of hono/route, which the oldest hono supported lacks.
  if (!anyProxy) return undefined
  const req = c.req as unknown as { matchedRoutes?: { handler: object }[]; routeIndex?: number }
  const routes = req.matchedRoutes
  if (!routes) return undefined
  for (let i = (req.routeIndex ?? 0) + 1; i < routes.length; i++) {
    const planFor = proxies.get(routes[i]!.handler)
    if (planFor) return planFor(c.req.method)
  }
  return undefined
}
