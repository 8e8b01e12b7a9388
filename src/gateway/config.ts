import * as z from 'zod/mini'
import { DEFAULT_DEADLINE_MS, defaultStrategy, MAX_ORIGINS, MAX_RELAY_BODY_BYTES, originUrlOption } from '../origin-adapter/options.js'
import { assertOptions } from '../shared/options.js'
import { credentialHeaderProblem } from './header-options.js'
import { corsSchema, type GatewayCors } from './cors.js'
import { pathProblem } from './paths.js'
import { SAFE_METHODS as SAFE } from '../shared/wire.js'

/** One origin of the gateway's config. */
export interface GatewayOrigin {
  name: string
  url: string
  /** Take this replica out of rotation (it keeps what it applied). */
  drain?: boolean
}

/** One route of the gateway's config: which requests go to which origins, how. */
export interface GatewayRoute {
  /** Hono path pattern, e.g. `/accounts/:id/*` (a regex parameter is `:name{regex}`); one Hono cannot compile is refused. */
  path: string
  /**
   * Methods of this route. Default: all six without a strategy, GET and HEAD for `hedge`, POST, PUT, PATCH and DELETE
   * otherwise. A GET route serves HEAD too; HEAD without GET is refused (it would never match).
   */
  methods?: string[]
  /** Default: `hedge` for GET/HEAD-only routes, `failover` otherwise. */
  strategy?: 'hedge' | 'failover' | 'replicate'
  /** Names of the origins this route uses. Default: all of them. */
  origins?: string[]
  /**
   * The ordering domain of a request (needs `replicate`): `param:<name>`
   * (a path parameter), `segment:<n>` (the n-th path segment, from 1) or
   * `header:<name>`. A `param:` the path does not declare, and a credential header, are refused at start-up.
   */
  domain?: string
  /** `replicate` writes only; on a route that has none it is refused, as every option the route's sends never read. */
  ackQuorum?: 1 | 'majority' | 'all'
  /** At most `deadlineMs` (default 8000). */
  timeoutMs?: number
  /** On a route that takes writes, at most `keys.maxRunMs`. */
  deadlineMs?: number
  /** Hedged sends only: a `hedge` route, GET and HEAD of a `replicate` route or of one without a strategy. */
  hedgeAfterMs?: number | 'auto'
  maxAttempts?: number
  maxResponseBytes?: number
  breaker?: { failures?: number; cooldownMs?: number }
  /** `replicate` writes only. */
  logRetentionMs?: number
}

/** The idempotency-key policy, for every route's state-changing methods. */
export interface GatewayKeys {
  /** Default true. `false` is refused with a `hedge` or `replicate` route taking writes (it sends a write only under its key). */
  required?: boolean
  ttlSeconds?: number
  leaseMs?: number
  maxRunMs?: number
  waitMs?: number
  inFlight?: 'wait' | 'reject'
  /** Default true: answer with the origin's reply, commit right after (once()'s `answerFirst`); false: commit first. */
  answerFirst?: boolean
  /** At most 1 MiB (the default): every gateway write is a relay, whose body is capped there. */
  maxBodyBytes?: number
  maxReplyBytes?: number
  /**
   * Who a key belongs to: `authorization` (the default: the Authorization
   * header's hash, so a refreshed token is a new scope), `header:<name>`
   * (the header as sent, a claim the gateway does not verify), or `none`
   * (every caller shares keys). Under the first two a keyed write without
   * the header is a 400 `scope-missing`; a credential header is refused.
   */
  scope?: string
}

/**
 * The gateway's configuration: the JSON in the `ONCE_CONFIG` var of
 * `wrangler.toml`. Secrets come from `wrangler secret put`:
 * `ONCE_SIGNING_SECRET` (signs every forwarded request) and
 * `ONCE_STATUS_TOKEN` (opens `/__once/status`).
 *
 * @example
 * const config: GatewayConfig = {
 *   origins: [{ name: 'eu', url: 'https://eu.bank.example' }, { name: 'us', url: 'https://us.bank.example' }],
 *   routes: [
 *     { path: '/accounts/:id/*', strategy: 'replicate', domain: 'param:id' },
 *     { path: '/accounts/*', methods: ['GET'], strategy: 'hedge' },
 *   ],
 * }
 */
export interface GatewayConfig {
  origins: GatewayOrigin[]
  routes: GatewayRoute[]
  keys?: GatewayKeys
  /** StableArea objects unordered keys are hashed over. Default 1. */
  shards?: number
  /**
   * Request signing (DESIGN §6). Default: every forwarded request is signed
   * with the `ONCE_SIGNING_SECRET` secret, keyid `ONCE_SIGNING_SECRET`, and
   * a request is refused (500 `misconfigured`) while that secret is unset.
   * `{ keyid }` names the key for origins (change it when you rotate);
   * `"off"` sends unsigned.
   */
  signing?: 'off' | { keyid?: string }
  /** Where new StableArea objects are placed (near the primary origin). */
  locationHint?: 'wnam' | 'enam' | 'sam' | 'weur' | 'eeur' | 'apac' | 'oc' | 'afr' | 'me'
  /** Browsers on these origins may call the gateway: CORS headers on every answer, replays included; preflights answered. */
  cors?: GatewayCors
}

/** `keys.maxRunMs` when the config gives none; the gateway passes it to once() (whose default it is too), and checks deadlines against it. */
export const DEFAULT_MAX_RUN_MS = 30_000

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const METHOD = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/
const int = (min: number, max: number) => z.optional(z.number().check(z.int(), z.gte(min), z.lte(max)))
const url = originUrlOption

const schema = z.strictObject({
  origins: z
    .array(z.strictObject({ name: z.string().check(z.regex(NAME, 'expected 1–64 letters, digits, _ or -')), url, drain: z.optional(z.boolean()) }))
    .check(
      z.minLength(1),
      z.maxLength(MAX_ORIGINS),
      z.refine((list) => new Set(list.map((o) => o.name)).size === list.length, 'expected unique origin names'),
    ),
  routes: z
    .array(
      z.strictObject({
        path: z.string().check(z.regex(/^\/[^\s]*$/, 'expected a path pattern starting with /')),
        methods: z.optional(z.array(z.string().check(z.regex(METHOD, 'expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS'))).check(z.minLength(1))),
        strategy: z.optional(z.enum(['hedge', 'failover', 'replicate'])),
        origins: z.optional(z.array(z.string()).check(z.minLength(1))),
        domain: z.optional(z.string().check(z.regex(/^(param:[A-Za-z0-9_]+|segment:[1-9][0-9]?|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/, 'expected param:<name>, segment:<n> or header:<name>'))),
        ackQuorum: z.optional(z.union([z.literal(1), z.literal('majority'), z.literal('all')])),
        timeoutMs: int(1, 600_000),
        deadlineMs: int(1, 1_800_000),
        hedgeAfterMs: z.optional(z.union([z.literal('auto'), z.number().check(z.int(), z.gte(0), z.lte(60_000))])),
        maxAttempts: int(1, 10),
        maxResponseBytes: int(1, 64 * 1024 * 1024),
        breaker: z.optional(z.strictObject({ failures: int(1, 1000), cooldownMs: int(1, 3_600_000) })),
        logRetentionMs: int(0, 365 * 86_400_000),
      }),
    )
    .check(z.minLength(1)),
  keys: z.optional(
    z.strictObject({
      required: z.optional(z.boolean()),
      ttlSeconds: int(1, 365 * 86400),
      leaseMs: int(1000, 15 * 60_000),
      maxRunMs: int(100, 60 * 60_000),
      waitMs: int(0, 5 * 60_000),
      inFlight: z.optional(z.enum(['wait', 'reject'])),
      answerFirst: z.optional(z.boolean()),
      // Every gateway write is a relay, stored before it is sent: its body is capped there whatever this says.
      maxBodyBytes: z.optional(
        z.number().check(
          z.int(),
          z.gte(1),
          z.lte(MAX_RELAY_BODY_BYTES, `expected at most ${MAX_RELAY_BODY_BYTES} bytes: every gateway write is relayed, stored before it is sent, and a relayed body is at most that (a larger one is a 413 whatever maxBodyBytes says)`),
        ),
      ),
      maxReplyBytes: int(1, 24 * 1024 * 1024),
      scope: z.optional(z.string().check(z.regex(/^(authorization|none|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/, 'expected authorization, none or header:<name>'))),
    }),
  ),
  shards: int(1, 4096),
  signing: z.optional(z.union([z.literal('off'), z.strictObject({ keyid: z.optional(z.string().check(z.regex(/^[\x20-\x7e]{1,128}$/, 'expected 1–128 printable ASCII characters'))) })])),
  locationHint: z.optional(z.enum(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'])),
  cors: corsSchema,
})

/**
 * Reads and validates the gateway's config from the `ONCE_CONFIG` var:
 * JSON, the schema, and cross-checks (route paths Hono compiles; routes
 * name known origins; a `domain` needs `replicate`). Throws a `TypeError`
 * naming the bad field.
 *
 * @param raw - the var's value (a JSON string, or the object wrangler parsed)
 * @returns the config
 * @throws TypeError naming the bad field, e.g. `routes.0.strategy: expected …`
 * @example
 * const config = parseGatewayConfig(env.ONCE_CONFIG)
 */
export function parseGatewayConfig(raw: unknown): GatewayConfig {
  let value = raw
  if (raw === undefined || raw === null || raw === '') throw new TypeError('hono-once: invalid ONCE_CONFIG options: (options): the ONCE_CONFIG var is not set')
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw)
    } catch (err) {
      throw new TypeError(`hono-once: invalid ONCE_CONFIG options: (options): not valid JSON (${(err as Error).message})`)
    }
  }
  assertOptions(schema, value, 'ONCE_CONFIG')
  const config = value as GatewayConfig
  const names = new Set(config.origins.map((o) => o.name))
  // A header read as it is (scope, domain) is stored with every record or log entry and sent to every origin.
  const scopeHeader = config.keys?.scope?.startsWith('header:') && credentialHeaderProblem('keys.scope', config.keys.scope.slice('header:'.length), 'authorization (its hash), or a header naming the tenant')
  if (scopeHeader) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: ${scopeHeader}`)
  config.routes.forEach((route, i) => {
    const domainHeader = route.domain?.startsWith('header:') && credentialHeaderProblem(`routes.${i}.domain`, route.domain.slice('header:'.length), 'param:<name> or segment:<n>, or a header naming the account')
    if (domainHeader) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: ${domainHeader}`)
    const path = pathProblem(route.path)
    if (path) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.path: ${path}`)
    const methods = methodsOf(route)
    if (config.cors && methods.includes('OPTIONS')) {
      throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.methods: with a cors block the gateway answers every OPTIONS request itself (the preflight), so a route's OPTIONS would never reach its origins: remove it`)
    }
    if (methods.includes('HEAD') && !methods.includes('GET')) {
      throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.methods: HEAD is answered by the route's GET (Hono serves a HEAD request with the GET handler, without the body), so a route with HEAD and no GET never matches it: add GET`)
    }
    // Hedged copies and replicas apply a write once by the request id once() gives it, which a keyless request has none of.
    const keyed = (['hedge', 'replicate'] as const).find((s) => route.strategy === s && methods.some((m) => !SAFE.has(m)))
    if (keyed && config.keys?.required === false) {
      throw new TypeError(
        `hono-once: invalid ONCE_CONFIG options: routes.${i}.strategy: "${keyed}" sends a write only under its idempotency key (the origins apply its copies once by the request id once() gives the key), and keys.required is false, so a write without Idempotency-Key would be a 500: set keys.required to true, or give keyless writes a "failover" route`,
      )
    }
    const unknown = route.origins?.find((n) => !names.has(n))
    if (unknown) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.origins: no origin is named ${JSON.stringify(unknown)}`)
    const writes = writesOf(route)
    if (route.strategy === 'replicate' && writes && !route.domain) {
      throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.domain: strategy "replicate" applies writes in one order per domain: name it (param:<name>, segment:<n> or header:<name>)`)
    }
    if (route.domain && route.strategy !== 'replicate') throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.domain: an ordering domain needs strategy "replicate"`)
    const absent = route.domain && absentDomain(route.path, route.domain)
    if (absent) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.domain: ${absent}`)
    const unread = unreadOption(route, methods)
    if (unread) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.${unread}`)
    // proxy() and once() would cut these to the other's value: refused rather than silently capped.
    const deadline = route.deadlineMs ?? DEFAULT_DEADLINE_MS
    if (route.timeoutMs !== undefined && route.timeoutMs > deadline) {
      const which = route.deadlineMs === undefined ? `${deadline}, the default` : `${deadline}`
      throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${i}.timeoutMs: expected at most deadlineMs (${which}): the deadline bounds every attempt, so a longer timeout is cut to it`)
    }
    const maxRunMs = config.keys?.maxRunMs ?? DEFAULT_MAX_RUN_MS
    if (deadline > maxRunMs && writesOf(route)) {
      const which = config.keys?.maxRunMs === undefined ? `${maxRunMs}, the default` : `${maxRunMs}`
      const given = route.deadlineMs === undefined ? ` (${deadline}, the default)` : ''
      throw new TypeError(
        `hono-once: invalid ONCE_CONFIG options: routes.${i}.deadlineMs${given}: expected at most keys.maxRunMs (${which}) on a route that takes writes: once() gives a write up at maxRunMs (a retryable 504), so a longer deadline is never reached; raise keys.maxRunMs, or lower deadlineMs`,
      )
    }
  })
  const shadowed = shadowedRoute(config.routes)
  if (shadowed) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: ${shadowed}`)
  const clash = orderedOriginsClash(config, [...names])
  if (clash) throw new TypeError(`hono-once: invalid ONCE_CONFIG options: routes.${clash.second}.origins: ${clash.why}`)
  return config
}

/**
 * The methods a route serves: its `methods`, or by default GET and HEAD for
 * `hedge`, the state-changing ones for `failover` and `replicate`, and all
 * of them without a strategy.
 *
 * @param route - a route of a validated config
 * @returns upper-case method names
 * @example
 * methodsOf({ path: '/a/*', strategy: 'hedge' }) // ['GET', 'HEAD']
 */
export function methodsOf(route: GatewayRoute): string[] {
  if (route.methods) return route.methods.map((m) => m.toUpperCase())
  if (route.strategy === undefined) return ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
  return route.strategy === 'hedge' ? ['GET', 'HEAD'] : ['POST', 'PUT', 'PATCH', 'DELETE']
}

/**
 * A route that some of its requests never reach: an earlier route serves the same methods on every path it matches
 * (the same pattern, its parameters' names aside; `/a/:id` before `/a/b`; `/a/*` before anything under `/a/`). First
 * match wins, so the later route (its origins, its strategy) would never get them: the operator would find out from
 * where writes went. HEAD counts as GET: Hono serves a HEAD with the GET route.
 */
function shadowedRoute(routes: GatewayRoute[]): string | undefined {
  const asRouted = (m: string) => (m === 'HEAD' ? 'GET' : m)
  for (const [j, later] of routes.entries()) {
    const methods = methodsOf(later)
    for (const [i, earlier] of routes.slice(0, j).entries()) {
      const served = new Set(methodsOf(earlier).map(asRouted))
      const taken = methods.filter((m) => served.has(asRouted(m)))
      if (taken.length === 0 || !covers(earlier.path, later.path)) continue
      const by = `routes.${i} (${JSON.stringify(earlier.path)}) comes first and serves them (first match wins)`
      if (taken.length === methods.length) return `routes.${j}: no request ever reaches it: its ${methods.join(', ')} requests on ${JSON.stringify(later.path)} all match routes.${i}, which comes first (${JSON.stringify(earlier.path)}; first match wins). Remove it, or put it before routes.${i}`
      return `routes.${j}.methods: its ${taken.join(', ')} requests on ${JSON.stringify(later.path)} never reach it: ${by}. Leave them out here, or put this route before routes.${i}`
    }
  }
  return undefined
}

/**
 * Whether every request path `later` matches, `earlier` matches too, and comes to it first, in every Hono the peer
 * range takes (4.6 on). Told for sure only: the same pattern; `earlier` `<literals>/*` over those literals or any path
 * under them; an `earlier` of literal segments and plain parameters (one segment each) over a `later` as long, without
 * regexes, optional parameters or wildcards, that has the same literal where `earlier` has one.
 * Anything else (regexes, optional parameters) is taken as reachable.
 */
function covers(earlier: string, later: string): boolean {
  // A parameter's name does not change what it matches: `/a/:id` and `/a/:key` are one pattern.
  const pattern = (path: string) => path.replace(/(?<=\/):[^/{}?:]+/g, ':')
  if (pattern(earlier) === pattern(later)) return true
  const prefix = /^((?:\/[^/:*{}?#]+)*)\/\*$/.exec(earlier)?.[1]
  if (prefix !== undefined && (later === prefix || later.startsWith(`${prefix}/`))) return true
  if (/[{}?]/.test(earlier) || /[{}?]/.test(later)) return false
  const [e, l] = [earlier.split('/').slice(1), later.split('/').slice(1)]
  for (const [k, segment] of e.entries()) {
    // A `*` after a parameter: hono 4.6 (the oldest the peer range takes) does not keep first-match order there (`/:p/*`
    // then `/:q/a`: `/x/a` goes to the second), so no claim; a `*` after literals only is the prefix case above.
    if (segment === '*') return false
    const other = l[k]
    if (other === undefined || other === '' || other === '*' || (!segment.startsWith(':') && segment !== other)) return false
  }
  return e.length === l.length
}

/** How a route sends a request of one method: by its strategy, except that a `replicate` route's reads are hedged (not ordered). */
type Sending = 'hedge' | 'failover' | 'replicate'

function sendingOf(method: string, strategy: GatewayRoute['strategy']): Sending {
  const s = defaultStrategy(method, strategy)
  return s === 'replicate' && SAFE.has(method) ? 'hedge' : s
}

/**
 * The route options only some ways of sending read; proxy() ignores them otherwise. One that none of a route's
 * methods is sent by is refused (as a `domain` without `replicate` is): an operator who writes `ackQuorum: "all"`
 * on a failover route believes writes wait for every origin, and they go to one.
 */
const READ_BY: Record<'ackQuorum' | 'logRetentionMs' | 'hedgeAfterMs', { by: Sending[]; what: string }> = {
  ackQuorum: { by: ['replicate'], what: '"replicate" writes' },
  logRetentionMs: { by: ['replicate'], what: '"replicate" writes (it keeps their log)' },
  hedgeAfterMs: { by: ['hedge'], what: '"hedge" sends (every method of a "hedge" route; GET and HEAD of a "replicate" route or of one without a strategy)' },
}

/** `<option>: why` for an option set on `route` that none of its methods' sendings reads, or undefined. */
function unreadOption(route: GatewayRoute, methods: string[]): string | undefined {
  const sendings = methods.map((m) => sendingOf(m, route.strategy))
  for (const [option, { by, what }] of Object.entries(READ_BY)) {
    if (route[option as keyof typeof READ_BY] === undefined || sendings.some((s) => by.includes(s))) continue
    const sends = [...new Set(sendings)].map((s) => `${methods.filter((_, n) => sendings[n] === s).join(', ')} by "${s}"`).join(' and ')
    return `${option}: read only by ${what}; this route sends ${sends}, so it would be ignored`
  }
  return undefined
}

/** Whether a route takes state-changing methods (only they are ordered and logged). */
function writesOf(route: GatewayRoute): boolean {
  return methodsOf(route).some((m) => !SAFE.has(m))
}

/**
 * Two ordered routes (`replicate` with a `domain`, taking writes) that replicate to
 * different origins. A domain name is one object and one log in the
 * gateway's one namespace, so a value both routes could take (the same id
 * under `/accounts/:id` and `/carts/:id`) would put both routes' writes in
 * one log, fed to both routes' origins (docs/replication.md). Refused at
 * start-up rather than found in production.
 */
function orderedOriginsClash(config: GatewayConfig, all: string[]): { second: number; why: string } | undefined {
  const seen: { index: number; origins: string }[] = []
  for (const [index, route] of config.routes.entries()) {
    if (route.strategy !== 'replicate' || !route.domain || !writesOf(route)) continue
    const origins = [...new Set(route.origins ?? all)].sort().join(', ')
    const other = seen.find((s) => s.origins !== origins)
    if (other) {
      return {
        second: index,
        why: `routes.${other.index} and routes.${index} both order writes by domain, to different origins (${other.origins} / ${origins}); a domain name is one log in the gateway, so a value both could take (the same id) would mix the two routes' writes. Give ordered routes the same origins, or run them in separate gateways (separate ONCE namespaces)`,
      }
    }
    seen.push({ index, origins })
  }
  return undefined
}

/**
 * Why `domain` can never be read from a request matching `path`, or
 * undefined when it can: a `param:` the pattern does not declare, or a
 * `segment:` past the pattern's last segment (when no `*` or regex param
 * could make the path longer). Such a route would blame every client with
 * 400 `domain-invalid`; it is refused at start-up instead.
 */
function absentDomain(path: string, domain: string): string | undefined {
  const [kind, name] = domain.split(':') as [string, string]
  const segments = path.split('/').filter(Boolean)
  if (kind === 'param') {
    // Hono's params: `:name`, `:name?` (optional), `:name{regex}`.
    const params = segments.filter((s) => s.startsWith(':')).map((s) => s.slice(1).replace(/\{.*$/, '').replace(/\?$/, ''))
    if (!params.includes(name)) {
      const declared = params.length > 0 ? `it declares ${params.map((p) => `:${p}`).join(', ')}` : 'it declares none'
      return `the path ${JSON.stringify(path)} has no :${name} parameter (${declared})`
    }
  }
  if (kind === 'segment' && !path.includes('*') && !path.includes('{') && Number(name) > segments.length) {
    return `the path ${JSON.stringify(path)} has ${segments.length} segment(s), so segment ${name} is never there`
  }
  return undefined
}
