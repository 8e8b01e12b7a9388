import { Hono, type Context } from 'hono'
import { once } from '../middleware/once.js'
import type { OnceOptions } from '../middleware/options.js'
import { defaultScope } from '../middleware/identity.js'
import { scopeReading } from '../middleware/identify.js'
import { warnBasicScope } from '../middleware/config.js'
import { problem } from '../shared/problem.js'
import { originGroup, proxyWith } from '../origin-adapter/dispatch.js'
import { MAX_RELAY_BODY_BYTES, type ProxyOptions } from '../origin-adapter/options.js'
import { DEFAULT_MAX_RUN_MS, methodsOf, type GatewayConfig, type GatewayKeys, type GatewayRoute } from './config.js'
import { handOffIsolateCounts, statusRoutes } from './status.js'
import { gatewayCors, withoutOriginCors } from './cors.js'
import type { GatewayBindings, GatewayState } from './types.js'
import { SAFE_METHODS as SAFE } from '../shared/wire.js'

export type { GatewayBindings, GatewayState } from './types.js'


/**
 * Builds the gateway app from a validated config: per route, `once()` on
 * its state-changing methods (with the config's key policy and ordering
 * domain) in front of `proxy()` to its origins, and `/__once/status`.
 *
 * @param config - from {@link parseGatewayConfig}
 * @returns the Hono app, and its state for the status page
 * @example
 * const { app } = buildGateway(parseGatewayConfig(env.ONCE_CONFIG))
 * return app.fetch(request, env, ctx)
 */
export function buildGateway(config: GatewayConfig): { app: Hono<{ Bindings: GatewayBindings }>; state: GatewayState } {
  const app = new Hono<{ Bindings: GatewayBindings }>()
  const state: GatewayState = { config, groups: [] }
  // In front of everything, once() included: a replay and the gateway's own problems carry the CORS headers too.
  if (config.cors) app.use(gatewayCors(config.cors))
  app.use(handOffIsolateCounts())
  statusRoutes(app, state)
  config.routes.forEach((route, i) => {
    const strategy = route.strategy
    const methods = methodsOf(route)
    const origins = config.origins.filter((o) => !route.origins || route.origins.includes(o.name)).map((o) => ({ name: o.name, url: o.url, ...(o.drain ? { drain: true } : {}) }))
    const options: ProxyOptions = {
      origins,
      ...(strategy ? { strategy } : {}),
      // Signed unless the config says "off": an unset secret is then a 500 naming it, never an unsigned send.
      ...(config.signing === 'off' ? {} : { secret: { env: 'ONCE_SIGNING_SECRET', keyid: config.signing?.keyid ?? 'ONCE_SIGNING_SECRET' } }),
      // A keyless write (keys.required false) passes once() unread: proxy() holds its body to the same limit and 413.
      maxBodyBytes: config.keys?.maxBodyBytes ?? MAX_RELAY_BODY_BYTES,
      ...pick(route, ['ackQuorum', 'timeoutMs', 'deadlineMs', 'hedgeAfterMs', 'maxAttempts', 'maxResponseBytes', 'breaker', 'logRetentionMs']),
    }
    const group = originGroup(options, `ONCE_CONFIG routes.${i}`)
    state.groups.push({ route, group })
    const handler = config.cors ? proxyWith(group, withoutOriginCors) : proxyWith(group)
    const unsafe = methods.filter((m) => !SAFE.has(m))
    const safe = methods.filter((m) => SAFE.has(m))
    if (unsafe.length > 0) app.on(unsafe, route.path, once(onceOptions(config, route)), handler)
    if (safe.length > 0) app.on(safe, route.path, handler)
  })
  app.notFound((c) => problemNotFound(c))
  // Hono compiles its router at the first match: done here, a path it rejects throws inside the Worker's try (a 500
  // problem naming it), not at every request. parseGatewayConfig names each bad path; this catches the rest.
  try {
    app.router.match('GET', '/')
  } catch (err) {
    throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes: Hono cannot compile the routes (${err instanceof Error ? err.message : String(err)})`)
  }
  return { app, state }
}

function pick<T extends object, K extends keyof T>(from: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k]
  return out
}

function onceOptions(config: GatewayConfig, route: GatewayRoute): OnceOptions {
  const keys: GatewayKeys = config.keys ?? {}
  const options: OnceOptions = {
    ...pick(keys, ['required', 'ttlSeconds', 'leaseMs', 'waitMs', 'inFlight', 'answerFirst', 'maxBodyBytes', 'maxReplyBytes']),
    // The gateway's own default, which its config checks route deadlines against.
    maxRunMs: keys.maxRunMs ?? DEFAULT_MAX_RUN_MS,
    ...(config.shards ? { shards: config.shards } : {}),
    ...(config.locationHint ? { locationHint: config.locationHint } : {}),
  }
  options.scope = scopeOf(keys.scope)
  // "none" is the one way to share keys across callers. Every other scope is a function, so once() refuses its '' (a
  // request without the header) with 400 scope-missing: the gateway runs no authentication, so a caller without
  // Authorization is anonymous, and anonymous callers must not share one key space.
  if (keys.scope === 'none') options.unscoped = 'shared'
  if (route.domain) options.domain = domainReader(route.domain)
  return options
}

/**
 * `authorization` (the default): the SHA-256 of the `Authorization` header, once()'s own default scope (the gateway
 * runs no `jwt()`, so never a JWT principal: a refreshed token is a new scope), but given as a function so that a
 * request without the header is refused, not shared. `header:<name>`: the header as the caller sent it (a claim the
 * gateway does not verify). `none`: one key space.
 */
function scopeOf(scope: string | undefined): NonNullable<OnceOptions['scope']> {
  if (!scope || scope === 'authorization') {
    const hashed = async (c: Context) => {
      const { scope: hashed, basic } = await defaultScope(c)
      if (basic) warnBasicScope()
      return hashed
    }
    // A request refused for its empty scope (400 scope-missing) is told what to send.
    return scopeReading(hashed, 'Authorization header (the gateway\'s keys.scope "authorization")')
  }
  if (scope === 'none') return () => ''
  const header = scope.slice('header:'.length)
  return scopeReading((c: Context) => c.req.header(header) ?? '', `${header} header (the gateway's keys.scope "header:${header}")`)
}

/** `param:id` → the path parameter; `segment:2` → the second path segment; `header:X-Account` → the header. */
function domainReader(spec: string): (c: Context) => string {
  const [kind, name] = spec.split(':') as [string, string]
  if (kind === 'param') return (c) => c.req.param(name) ?? ''
  if (kind === 'segment') return (c) => c.req.path.split('/').filter(Boolean)[Number(name) - 1] ?? ''
  return (c) => c.req.header(name) ?? ''
}

function problemNotFound(c: Context): Response {
  return problem('not-found', { detail: `No gateway route matches ${c.req.method} ${c.req.path}.`, instance: c.req.path })
}
