import type { Context } from 'hono'
import * as z from 'zod/mini'
import { assertOptions, functionOption } from '../shared/options.js'
import type { StableArea } from '../durable/stable-area.js'
import type { JsonValue } from '../durable/types.js'
import type { FingerprintOptions } from './fingerprint.js'
import type { ReplyCacheOptions } from './reply-cache.js'

/**
 * Where Cloudflare may place a new StableArea object (`DurableObjectNamespace#get`'s `locationHint`).
 *
 * @example
 * const hint: LocationHint = 'weur' // near an origin in Western Europe
 */
export type LocationHint = 'wnam' | 'enam' | 'sam' | 'weur' | 'eeur' | 'apac' | 'oc' | 'afr' | 'me'

/** Options of {@link once}. Every one is optional; the defaults follow Stripe and the IETF draft. */
export interface OnceOptions {
  /** The StableArea namespace. Default: `c.env.ONCE`. */
  namespace?: (c: Context) => DurableObjectNamespace<StableArea> | undefined
  /** Objects the keys are hashed over (each handles ~500 writes/s). Default 1. Changing it moves keys. */
  shards?: number
  /**
   * Where new StableArea objects are placed: near the origin or database the
   * handler talks to, since every admit and commit crosses to the object.
   * Only a hint, and only for objects not created yet. Default: near the first request.
   */
  locationHint?: LocationHint
  /** Methods that need a key; others pass through. Default POST, PUT, PATCH, DELETE. */
  methods?: string[]
  /** A missing key is a 400 (true) or passes through untouched (false). Default true. */
  required?: boolean
  /**
   * Tenant of the key; two scopes never share a record. Default: the JWT's
   * issuer and subject when Hono's `jwt()`/`jwk()` ran before `once()`,
   * else the SHA-256 of `Authorization`, else '' (unscoped, with a warning).
   */
  scope?: (c: Context) => string | Promise<string>
  /**
   * Whether callers without a scope may share keys. A `scope` function that
   * returns `''` is a 400 `scope-missing` unless this is `'shared'`; the
   * default scope's last fallback (neither a JWT nor `Authorization`) is
   * shared either way, with a warning once per isolate unless this says so.
   */
  unscoped?: 'shared'
  /**
   * The ordering domain of a request (DESIGN §3–4), e.g. the account it
   * changes. Requests of one domain get gapless, increasing sequence numbers
   * from the domain's own StableArea (`once/domain/<name>`) and are applied
   * by every replica in that order; the route needs `proxy({ strategy:
   * 'replicate' })`. Without it nothing is ordered. 1–255 printable ASCII.
   */
  domain?: (c: Context) => string | Promise<string>
  /** How requests are fingerprinted: options for the default, or your own function (returns any string). */
  fingerprint?: FingerprintOptions | ((c: Context, body: Uint8Array) => string | Promise<string>)
  /** How long a key and its reply are kept. Default 86400 (24 h). */
  ttlSeconds?: number
  /**
   * How long a Worker owns a running key before a retry may take it over;
   * renewed every `leaseMs / 3` while the handler runs. Also how long a key
   * stays busy after a Worker died or an admit's answer was lost. Default 10000, at least 1000.
   */
  leaseMs?: number
  /**
   * Longest a handler may run (and its reply be read) before it is presumed
   * dead: its `c.var.once.signal` aborts, renewal stops, the key is freed and
   * the client gets a retryable 504. Default 30000.
   */
  maxRunMs?: number
  /** A duplicate of a running request waits for its reply ('wait') or gets 409 at once ('reject'). Default 'wait'. */
  inFlight?: 'wait' | 'reject'
  /** Longest wait in 'wait' mode before a 409; keep it below your clients' timeout. Default 5000. */
  waitMs?: number
  /**
   * Whether a final reply is answered as soon as it is read, its commit
   * following in the background (`waitUntil`): one durable round trip on the
   * client's path instead of two. Only where nothing is lost by it: a route
   * whose request the object does not keep for resending (a handler of your
   * own, no `proxy()` relay), or `proxy()`'s own answer to the request it
   * keeps. A duplicate arriving before the commit lands waits for it
   * (`'wait'`) or gets 409 (`'reject'`). `false`: every answer waits for its
   * commit, so a client holding an answer knows it is stored. Default true.
   */
  answerFirst?: boolean
  /** Largest request body; larger is a 413. Default 1 MiB. */
  maxBodyBytes?: number
  /** Largest reply body stored for replay. Default 8 MiB. */
  maxReplyBytes?: number
  /**
   * Response headers stored and replayed (allow-list). Default: all but
   * hop-by-hop, `Set-Cookie`, `Content-Length`, and what outer middleware
   * sets for the caller at hand (`Access-Control-*`, `Vary`, request ids,
   * `Server-Timing`, rate-limit headers): see `replayedByDefault`. Outer
   * middleware sets its own on every answer, replays included.
   */
  replayHeaders?: string[]
  /** Rebuilds a duplicate's reply from the arguments given to `c.var.once.commit(res, { args })`. */
  onDuplicate?: (args: JsonValue, c: Context) => Response | Promise<Response>
  /** Cache of committed replies in this `once()` instance (replays without a round trip), or false. Default 1000 entries / 8 MiB. */
  replayCache?: false | ReplyCacheOptions
}

const fn = z.optional(functionOption)
const headerNames = z.array(z.string().check(z.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected header names')))
const int = (min: number, max: number) => z.optional(z.number().check(z.int(), z.gte(min), z.lte(max)))

const schema = z.strictObject({
  namespace: fn,
  shards: int(1, 4096),
  locationHint: z.optional(z.enum(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'])),
  methods: z.optional(z.array(z.string().check(z.regex(/^[A-Za-z]+$/, 'expected HTTP method names such as "POST"'))).check(z.minLength(1))),
  required: z.optional(z.boolean()),
  scope: fn,
  unscoped: z.optional(z.literal('shared')),
  domain: fn,
  fingerprint: z.optional(
    z.union([functionOption, z.strictObject({ headers: z.optional(headerNames), normalizeJson: z.optional(z.boolean()), normalizeForms: z.optional(z.boolean()) })]),
  ),
  ttlSeconds: int(1, 365 * 86400),
  // Below a second a busy isolate's renewal can come too late and a live handler lose its key.
  leaseMs: int(1000, 15 * 60_000),
  maxRunMs: int(100, 60 * 60_000),
  inFlight: z.optional(z.enum(['wait', 'reject'])),
  waitMs: int(0, 5 * 60_000),
  answerFirst: z.optional(z.boolean()),
  maxBodyBytes: int(1, 100 * 1024 * 1024),
  maxReplyBytes: int(1, 24 * 1024 * 1024),
  replayHeaders: z.optional(headerNames),
  onDuplicate: fn,
  replayCache: z.optional(
    z.union([z.literal(false), z.strictObject({ maxEntries: int(1, 1_000_000), maxBytes: int(1, 256 * 1024 * 1024) })]),
  ),
})

/**
 * Checks `options` against the schema, throwing a `TypeError` that names the
 * offending option by its path, so a bad configuration fails when the app starts.
 *
 * @param options - what the user passed to `once()`
 * @param where - name used in the message
 * @throws TypeError naming each bad option
 * @example
 * validateOptions({ ttlSeconds: -1 }, 'once()') // TypeError: hono-once: invalid once() options: ttlSeconds: …
 */
export function validateOptions(options: unknown, where: string): void {
  assertOptions(schema, options, where)
}
