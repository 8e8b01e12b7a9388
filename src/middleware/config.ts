import type { Context } from 'hono'
import type { JsonValue } from '../durable/types.js'
import { fingerprint as defaultFingerprint } from './fingerprint.js'
import { defaultScope } from './identity.js'
import { type LocationHint, type OnceOptions, validateOptions } from './options.js'
import { replayFilter } from '../shared/reply.js'
import { heldRequest } from '../shared/request-body.js'
import { ReplyCache } from './reply-cache.js'
import type { Namespace } from './rpc.js'

/** The unscoped-fallback warning is said once per isolate, however many `once()` instances there are. */
let warnedUnscoped = false
/** Whether the Basic-credential warning was logged in this isolate. */
let warnedBasic = false

/**
 * Logs, once per isolate, that a scope hashed from a `Basic` credential is a guessable secret at rest (the gateway's
 * `"authorization"` scope calls it too).
 *
 * @example
 * if ((await defaultScope(c)).basic) warnBasicScope()
 */
export function warnBasicScope(): void {
  if (warnedBasic) return
  warnedBasic = true
  console.warn(
    'hono-once: the default scope of a request with Basic credentials is the SHA-256 of user:password, which is kept in ' +
      "the key's record (the stable area's, or an OnceObject's) and sent to origins as Once-Principal: a guessed password can be checked against it offline. " +
      "Scope by the user your auth middleware verified instead, e.g. scope: (c) => c.get('user').id (behind the gateway: keys.scope \"header:…\").",
  )
}

/** `once()`'s options with every default filled in, and what is derived from them once. */
export interface OnceConfig {
  namespace: (c: Context) => Namespace | undefined
  shards: number
  locationHint: LocationHint | undefined
  gated: ReadonlySet<string>
  required: boolean
  scope: (c: Context) => string | Promise<string>
  /** The scope of a keyless request's caller, for `Once-Principal` only: `scope`, without its warnings. */
  callerScope: (c: Context) => string | Promise<string>
  /** A `scope` function's `''` is refused (400 scope-missing): the user gave one and did not ask for sharing. */
  refuseUnscoped: boolean
  domain: ((c: Context) => string | Promise<string>) | undefined
  fingerprint: (c: Context, body: Uint8Array) => string | Promise<string>
  ttlMs: number
  leaseMs: number
  maxRunMs: number
  /** How long a duplicate waits in the object; 0 in reject mode. */
  waitMs: number
  /** A final reply may be answered before its commit lands (see `OnceOptions.answerFirst`). */
  answerFirst: boolean
  maxBodyBytes: number
  maxReplyBytes: number
  /** Lower-case header allow-list for replays, or undefined for the default deny-list. */
  allow: ReadonlySet<string> | undefined
  /** Which response headers are stored for replay: `allow`, or the default deny-list (see replayFilter). */
  replayed: (name: string) => boolean
  onDuplicate: ((args: JsonValue, c: Context) => Response | Promise<Response>) | undefined
  /** The reply cache for a namespace (one per namespace and `once()` instance), or undefined when off. */
  cacheFor: (ns: Namespace) => ReplyCache | undefined
}

/**
 * Validates `options` (throwing a `TypeError` that names the bad one) and
 * fills in the defaults.
 *
 * @param options - what the user passed to `once()`
 * @returns the resolved configuration
 * @example
 * const config = resolveConfig({ leaseMs: 5000 })
 * config.maxRunMs // 30000
 */
export function resolveConfig(options: OnceOptions): OnceConfig {
  validateOptions(options, 'once()')
  const {
    namespace = (c: Context) => (c.env as { ONCE?: Namespace } | undefined)?.ONCE,
    shards = 1,
    locationHint,
    methods = ['POST', 'PUT', 'PATCH', 'DELETE'],
    required = true,
    scope,
    unscoped,
    domain,
    fingerprint = {},
    ttlSeconds = 86_400,
    leaseMs = 10_000,
    maxRunMs = 30_000,
    inFlight = 'wait',
    waitMs = 5_000,
    answerFirst = true,
    maxBodyBytes = 1024 * 1024,
    maxReplyBytes = 8 * 1024 * 1024,
    replayHeaders,
    onDuplicate,
    replayCache = {},
  } = options
  const caches = new WeakMap<Namespace, ReplyCache>()
  const allow = replayHeaders && new Set(replayHeaders.map((h) => h.toLowerCase()))
  return {
    namespace,
    shards,
    locationHint,
    gated: gatedMethods(methods),
    required,
    scope:
      scope ??
      (async (c) => {
        const { scope: tenant, unscoped: fallback, basic } = await defaultScope(c)
        if (basic) warnBasicScope()
        if (fallback && !warnedUnscoped && unscoped !== 'shared') {
          warnedUnscoped = true
          console.warn(
            'hono-once: a request with neither a verified JWT (jwt()/jwk() before once()) nor an Authorization header is unscoped: ' +
              'every such caller shares idempotency keys. Pass a scope option (e.g. the session user) if callers authenticate otherwise, ' +
              "or unscoped: 'shared' if sharing is meant.",
          )
        }
        return tenant
      }),
    // A keyless request's caller, for Once-Principal only: the same scope, without the warnings about shared keys.
    callerScope: scope ?? (async (c) => (await defaultScope(c)).scope),
    refuseUnscoped: scope !== undefined && unscoped !== 'shared',
    domain,
    fingerprint:
      typeof fingerprint === 'function'
        ? fingerprint
        : (c, body) => {
            // The request as it came (method, URL, headers): a replay never makes the handler's copy of it.
            const sent = heldRequest(c)
            return defaultFingerprint({ method: sent.method, url: sent.url, headers: sent.headers, body }, fingerprint)
          },
    ttlMs: ttlSeconds * 1000,
    leaseMs,
    maxRunMs,
    waitMs: inFlight === 'wait' ? waitMs : 0,
    answerFirst,
    maxBodyBytes,
    maxReplyBytes,
    allow,
    replayed: replayFilter(allow),
    onDuplicate,
    cacheFor: (ns) => {
      if (replayCache === false) return undefined
      let cache = caches.get(ns)
      if (!cache) caches.set(ns, (cache = new ReplyCache(replayCache)))
      return cache
    },
  }
}

/**
 * The methods a route gates: those `methods` names, and HEAD with GET (Hono
 * runs a GET route for a HEAD, so an ungated HEAD would run a gated GET's
 * handler without a key or a record).
 */
function gatedMethods(methods: readonly string[]): ReadonlySet<string> {
  const gated = new Set(methods.map((m) => m.toUpperCase()))
  if (gated.has('GET')) gated.add('HEAD')
  return gated
}
