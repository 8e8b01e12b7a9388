import type { MiddlewareHandler } from 'hono'

/** How an `OnceObject` route runs a keyed request. */
export interface OnceRouteOptions {
  /**
   * The handler calls out (an outbound `fetch()`, another Durable Object,
   * a timer): it runs under a lease, as `once()` runs handlers, instead of
   * inside one storage transaction with its record (which would hold every
   * other request to the object while it waits). Its own SQL writes then
   * commit as they go: a crash between them and the record lets a retry run
   * the handler again. Default false.
   */
  lease?: boolean
}

/** The `onceRoute({ lease: true })` handlers made in this isolate. */
const leaseMarkers = new WeakSet<object>()
/** How many of them were made: none (most apps) lets {@link leaseDeclared} answer without asking the router. */
let leaseMarkersMade = 0

/**
 * Declares how an {@link OnceObject} route runs keyed requests. Without it
 * (or with `lease: false`) a route's handler runs inside
 * `ctx.storage.transaction()` with its record: its SQL writes and the
 * record commit or roll back together. A route whose handler calls out
 * declares `onceRoute({ lease: true })` before its handler.
 *
 * @param options - see {@link OnceRouteOptions}
 * @returns a middleware that only marks the route
 * @example
 * app = new Hono().post('/transfers', onceRoute({ lease: true }), async (c) => {
 *   await fetch('https://bank.example/notify', { method: 'POST' })
 *   return c.json({ ok: true }, 201)
 * })
 */
export function onceRoute(options: OnceRouteOptions = {}): MiddlewareHandler {
  const lease = options.lease === true
  const marker: MiddlewareHandler = async function onceRoute(c, next) {
    await next()
    // The route's answer, for the lease's run: middleware around the route may still run long, or fail, after it.
    // By the token of the run (a header survives a middleware that gives the route another request), and only while
    // that run waits for it: an attempt abandoned at maxRunMs that answers later writes nowhere, and leaves nothing.
    const token = c.req.header(LEASE_RUN_HEADER)
    if (lease && token !== undefined && c.finalized && answered.has(token)) answered.set(token, c.res.status)
  }
  if (lease) {
    leaseMarkers.add(marker)
    leaseMarkersMade++
  }
  return marker
}

/**
 * The request header that carries a lease run's token from the object to {@link onceRoute}: one per attempt (every
 * attempt of a key shares its `Once-Request-Id`). The object's word: set on the request of a lease run, removed from
 * every other request its app gets, a client's included.
 */
export const LEASE_RUN_HEADER = 'once-lease-run'

/**
 * What the lease route of each running attempt answered, by the attempt's token: undefined until its route
 * answered. Only runs that are waiting have an entry (see {@link expectAnswer}).
 */
const answered = new Map<string, number | undefined>()

/**
 * Opens the slot of one attempt of a lease route, before its app runs: only an attempt with an open slot has its
 * answer noted.
 *
 * @param token - the run's token, unique to the attempt (sent in {@link LEASE_RUN_HEADER})
 * @example
 * expectAnswer(token)
 * try { … } finally { forgetAnswer(token) }
 */
export function expectAnswer(token: string): void {
  answered.set(token, undefined)
}

/**
 * The status the lease route of a run answered, once its handler (and what
 * runs after `onceRoute()` on the route) returned; undefined before.
 *
 * @param token - the run's token
 * @returns the answer's status, or undefined
 * @example
 * if (isFinalStatus(answeredStatus(token) ?? 500)) … // took effect, though the app's middleware still runs
 */
export function answeredStatus(token: string): number | undefined {
  return answered.get(token)
}

/**
 * Closes the slot of a run, once it ended: what its route answers after that is not kept.
 *
 * @param token - the run's token
 * @example
 * forgetAnswer(token)
 */
export function forgetAnswer(token: string): void {
  answered.delete(token)
}

/**
 * How many runs wait for their route's answer now: one per lease route running in this isolate, none left behind
 * by one that ended.
 *
 * @returns the number of open slots
 * @example
 * expect(answerSlots()).toBe(before)
 */
export function answerSlots(): number {
  return answered.size
}

/** Hono's router and its path of a request, as far as finding a request's handlers needs them. */
export interface RoutedApp {
  router: { match(method: string, path: string): unknown }
  /** The path the app routes a request by (Hono's: percent-decoded; without a trailing slash when `strict: false`). */
  getPath?(request: Request, options?: { env?: unknown }): string
}

/**
 * Whether the route `app` runs for `request` declared
 * `onceRoute({ lease: true })`. The request is matched as the app itself
 * routes it (its `getPath`: `/acct/x/%63alls` is `/acct/x/calls`, and so is
 * `/acct/x/calls/` in a `strict: false` app; a HEAD runs the GET route), so
 * no spelling of a lease route's path runs it inside a transaction.
 *
 * @param app - the object's Hono app
 * @param requestOf - makes the request (method, URL, headers; no body) as the app will see it, called only when some route declared a lease
 * @param env - the object's env (a custom `getPath` may read it)
 * @returns true for a lease route
 * @example
 * if (leaseDeclared(this.app, () => request, this.env)) …
 */
export function leaseDeclared(app: RoutedApp, requestOf: () => Request, env?: unknown): boolean {
  if (leaseMarkersMade === 0) return false
  const request = requestOf()
  let path: string | undefined
  try {
    path = app.getPath?.(request, { env })
  } catch (err) {
    // The app will fail the same way on this request; the URL's path decides meanwhile.
    console.error("hono-once: the app's getPath threw; the lease decision takes the URL's path", err)
  }
  path ??= new URL(request.url).pathname
  // Hono's routers answer [[[handler, route], params][], stash].
  const matched = app.router.match(request.method === 'HEAD' ? 'GET' : request.method, path) as [[[object, unknown], unknown][], unknown]
  for (const [[handler]] of matched[0]) if (leaseMarkers.has(unwrap(handler))) return true
  return false
}

/**
 * A sub-app's handler mounted with `app.route()` is wrapped when the sub-app
 * has its own error handler; Hono keeps the original under `__COMPOSED_HANDLER`
 * (a symbol described `composedHandler` before hono 4.7).
 */
function unwrap(handler: object): object {
  const original = (handler as { __COMPOSED_HANDLER?: object }).__COMPOSED_HANDLER
  if (original) return original
  for (const symbol of Object.getOwnPropertySymbols(handler)) {
    if (symbol.description === 'composedHandler') return (handler as Record<symbol, object>)[symbol] ?? handler
  }
  return handler
}
