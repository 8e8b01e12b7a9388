import * as z from 'zod/mini'
import { assertOptions, functionOption, optionsError } from '../shared/options.js'
import { neverForwarded } from '../shared/send.js'
import type { AckQuorum, BreakerOptions, Origin, SecretOption, Strategy } from './types.js'
import type { DivergenceEvent } from '../durable/types.js'

export type { DivergenceEvent } from '../durable/types.js'

/**
 * Schema of an origin URL option: absolute http(s), without query or
 * fragment (the request's path and query are appended to it), and without
 * credentials (`user:pass@`): they are not sent (origins authenticate the
 * edge by its signature, or are service bindings), and the URL is kept in
 * relay plans and shown on the status page.
 *
 * @example
 * z.strictObject({ name: z.string(), url: originUrlOption })
 */
export const originUrlOption = z.string().check(
  z.refine(
    (v) => {
      try {
        const u = new URL(v)
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === ''
      } catch {
        return false
      }
    },
    { message: 'expected an absolute http(s) URL without query or fragment', abort: true },
  ),
  z.refine(
    (v) => {
      const u = new URL(v)
      return u.username === '' && u.password === ''
    },
    'expected no credentials in the URL (user:password@): they are not sent, and the URL is stored in relay plans and shown on the status page; origins trust the edge by its signature (secret)',
  ),
)

/** Options of {@link proxy} and {@link dispatch}. */
export interface ProxyOptions {
  /** The regional origins of one logical service, in order of preference. */
  origins: Origin[]
  /** How requests are spread (DESIGN §5). Default: `'hedge'` for GET/HEAD, `'failover'` for the rest. */
  strategy?: Strategy
  /** Timeout of one attempt at one origin; at most `deadlineMs` (given or default), else refused. Default 3000. */
  timeoutMs?: number
  /** Time for the whole request, every attempt included; keep it below your clients' timeout. Default 8000. */
  deadlineMs?: number
  /** Hedge: how long to wait for the preferred origin before also asking the next; `'auto'` = its recent p95. Default `'auto'`. */
  hedgeAfterMs?: number | 'auto'
  /** Most sends per request, hedges and retries included (gRPC caps hedging at 5). Default 3. */
  maxAttempts?: number
  /**
   * Signs every forwarded request (RFC 9421, DESIGN §6) with the secret the
   * Worker's env var `env` holds, read at send time and never stored;
   * `keyid` (default: the env name) is what origins know the key by. A
   * literal string is refused: it would be stored with every relay. Without
   * a secret, requests go unsigned (a warning, once per isolate).
   */
  secret?: SecretOption
  /**
   * Allow-list of request headers forwarded to the origins (besides
   * `Content-Type` and the wire contract's own). Default: every end-to-end
   * header, except that a state-changing request drops the client's
   * `Authorization` and `Cookie` (it is stored and resent; origins read the
   * caller from `Once-Principal`). List a credential here to forward it
   * anyway. A name never forwarded whatever this says (hop-by-hop,
   * `Host`, `Content-Length`, `Accept-Encoding`, `Cf-*`, `Idempotency-Key`,
   * `Once-*`, `Content-Digest`, `Signature*`) is refused. The signature
   * covers every forwarded header.
   */
  forwardHeaders?: string[]
  /** Largest origin answer read; larger is a 502. Default 8 MiB. */
  maxResponseBytes?: number
  /**
   * Largest request body this reads itself and sends (bytes): a write no `once()` read (keyless, or no `once()` in
   * front) or a request the app made for `dispatch()`. A larger one is a 413 `body-too-large`, answered once the client
   * has sent it, and nothing is sent. Default 1 MiB; at most 100 MiB. A keyed write behind `once()` is held to
   * `once()`'s `maxBodyBytes` instead (it read the body).
   */
  maxBodyBytes?: number
  /** Per-origin circuit breaker. Default `{ failures: 5, cooldownMs: 10000 }`. */
  breaker?: BreakerOptions
  /** `replicate`: replica answers the client waits for. Default 1. */
  ackQuorum?: AckQuorum
  /** `replicate`: called when a replica's answer differs from the others' for the same sequence. */
  onDivergence?: (event: DivergenceEvent) => void | Promise<void>
  /** `replicate`: how long applied log entries are kept for replicas that join later (they are pruned only once every replica has them). Default 86400000 (24 h). */
  logRetentionMs?: number
  /**
   * `replicate`: a request every replica in rotation refuses for good (the app threw on it: `handler-failed`; or
   * `body-too-large`) for this long is poison: committed as a 502 `request-abandoned` and its slot made a no-op.
   * Temporary answers never count. Default 600000 (10 minutes).
   */
  poisonAfterMs?: number
}

/**
 * Largest request body a relay stores (a SQLite row holds at most 2 MB);
 * a larger relayed request is refused with 413 before anything is sent.
 *
 * @example
 * if (body.byteLength > MAX_RELAY_BODY_BYTES) return problem('body-too-large', …)
 */
export const MAX_RELAY_BODY_BYTES = 1024 * 1024

/**
 * Most bytes of the request line's path and the headers a relayed request
 * forwards (names and values, 4 bytes more per line; on a signed route each
 * name again, as `Signature-Input` lists it), before the edge's own
 * signature and `Once-*` headers (under 1 KiB). An origin's HTTP server refuses more than it
 * takes before any code runs (Node: 16 KiB in all; nginx: 8 KiB a line), with
 * a 431 or 400 that is the same on every send: on an ordered route that one
 * request would hold up its domain. So a larger one is refused with 431
 * before anything is stored or sent.
 *
 * @example
 * if (forwardedHeaderBytes(request) > MAX_RELAY_HEADER_BYTES) return problem('headers-too-large', …)
 */
export const MAX_RELAY_HEADER_BYTES = 8 * 1024

/** Most origins one proxy() takes (the gateway's config is held to it too). */
export const MAX_ORIGINS = 16
/** `deadlineMs` when the options give none (the gateway checks a route's `timeoutMs` against it). */
export const DEFAULT_DEADLINE_MS = 8000

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/
/** A keyid travels as an sf-string in `Signature-Input`: printable ASCII. */
const secretSchema = z.strictObject({
  env: z.string().check(z.minLength(1), z.maxLength(128)),
  keyid: z.optional(z.string().check(z.regex(/^[\x20-\x7e]{1,128}$/, 'expected 1–128 printable ASCII characters'))),
})
const int = (min: number, max: number) => z.optional(z.number().check(z.int(), z.gte(min), z.lte(max)))
const fetcher = z.custom<{ fetch: unknown }>((v) => typeof v === 'object' && v !== null && typeof (v as { fetch?: unknown }).fetch === 'function', 'expected an object with a fetch method (a service binding)')
const origin = z.union([
  z.strictObject({ name: z.string().check(z.regex(NAME, 'expected 1–64 letters, digits, _ or -')), url: originUrlOption, drain: z.optional(z.boolean()) }),
  z.strictObject({ name: z.string().check(z.regex(NAME, 'expected 1–64 letters, digits, _ or -')), fetcher }),
])

const schema = z.strictObject({
  origins: z.array(origin).check(
    z.minLength(1),
    z.maxLength(MAX_ORIGINS),
    z.refine((list) => new Set(list.map((o) => o.name)).size === list.length, 'expected unique origin names'),
  ),
  strategy: z.optional(z.enum(['hedge', 'failover', 'replicate'])),
  timeoutMs: int(1, 10 * 60_000),
  deadlineMs: int(1, 30 * 60_000),
  hedgeAfterMs: z.optional(z.union([z.literal('auto'), z.number().check(z.int(), z.gte(0), z.lte(60_000))])),
  maxAttempts: int(1, 10),
  secret: z.optional(secretSchema),
  forwardHeaders: z.optional(z.array(z.string().check(z.regex(HEADER_NAME, 'expected a header name'))).check(z.maxLength(64))),
  maxResponseBytes: int(1, 64 * 1024 * 1024),
  maxBodyBytes: int(1, 100 * 1024 * 1024),
  breaker: z.optional(z.strictObject({ failures: int(1, 1000), cooldownMs: int(1, 3_600_000) })),
  ackQuorum: z.optional(z.union([z.literal(1), z.literal('majority'), z.literal('all')])),
  onDivergence: z.optional(functionOption),
  logRetentionMs: int(0, 365 * 86_400_000),
  poisonAfterMs: int(0, 30 * 86_400_000),
})

/** The unsigned-proxy warning is given once per isolate. */
let warnedUnsigned = false

/**
 * Checks `proxy()`/`dispatch()` options, throwing a `TypeError` that names
 * the bad field (`origins.1.url: expected an absolute http(s) URL …`).
 *
 * @param options - what the user passed
 * @param where - `proxy()` or `dispatch()`, for the message
 * @throws TypeError naming each bad option
 * @example
 * validateProxyOptions({ origins: [] }, 'proxy()') // TypeError: hono-once: invalid proxy() options: origins: expected at least 1 items
 */
export function validateProxyOptions(options: unknown, where: string): void {
  if (typeof (options as { secret?: unknown } | null)?.secret === 'string') {
    throw optionsError(where, [
      "secret: a literal secret is refused, it would be stored with every relay; name the env var that holds it: { env: 'ONCE_SIGNING_SECRET' }",
    ])
  }
  assertOptions(schema, options, where)
  const o = options as ProxyOptions
  if (o.secret === undefined && !warnedUnsigned) {
    warnedUnsigned = true
    console.warn(`hono-once: ${where} has no secret: requests to its origins go unsigned, so an origin cannot tell them from anyone's. Set secret: { env: 'ONCE_SIGNING_SECRET' } (DESIGN §6).`)
  }
  if (o.strategy === 'replicate' && o.origins.some((origin) => !('url' in origin))) {
    throw new TypeError(`hono-once: invalid ${where} options: origins: the 'replicate' strategy needs url origins (the stable area feeds lagging replicas itself)`)
  }
  if (o.strategy === 'replicate') {
    // `drain` takes a replica out of an ordering domain's rotation; with all of them out, every write would be logged and wait.
    if (o.origins.every((origin) => 'drain' in origin && origin.drain === true)) {
      throw new TypeError(`hono-once: invalid ${where} options: origins: every replica has drain: true, so no write could be applied; leave at least one in rotation`)
    }
    // One server under two names would count twice towards a quorum: 'majority' of three could be one machine.
    const byUrl = new Map<string, string>()
    for (const origin of o.origins) {
      if (!('url' in origin)) continue
      const url = new URL(origin.url).href.replace(/\/+$/, '')
      const other = byUrl.get(url)
      if (other !== undefined) throw new TypeError(`hono-once: invalid ${where} options: origins: ${other} and ${origin.name} have one URL (${url}); each replica needs its own`)
      byUrl.set(url, origin.name)
    }
  }
  // The deadline bounds every attempt, the default one too: a longer timeout would be cut to it (as the gateway refuses).
  const deadline = o.deadlineMs ?? DEFAULT_DEADLINE_MS
  if (o.timeoutMs !== undefined && o.timeoutMs > deadline) {
    const which = o.deadlineMs === undefined ? `${deadline}, the default` : `${deadline}`
    throw optionsError(where, [`timeoutMs: expected at most deadlineMs (${which}): the deadline bounds every attempt, so a longer timeout is cut to it; raise deadlineMs, or lower timeoutMs`])
  }
  // A listed name the edge never forwards would be ignored: the operator who lists Host believes it is sent.
  const ignored = (o.forwardHeaders ?? []).filter(neverForwarded)
  if (ignored.length > 0) {
    throw optionsError(where, [
      `forwardHeaders: ${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} never forwarded, whatever this list says (hop-by-hop headers, Host, Content-Length, Accept-Encoding and Cf-* describe the client's connection; Idempotency-Key, Once-*, Content-Digest, Signature and Signature-Input are the edge's own): remove ${ignored.length === 1 ? 'it' : 'them'}`,
    ])
  }
}

/** The strategy a request gets when the options name none: hedge reads, fail over writes. */
export function defaultStrategy(method: string, configured: Strategy | undefined): Strategy {
  return configured ?? (method === 'GET' || method === 'HEAD' ? 'hedge' : 'failover')
}
