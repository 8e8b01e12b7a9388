import type { Context } from 'hono'
import { z } from 'zod'
import { assertOptions, functionOption } from '../shared/options.js'
import type { StableArea } from '../durable/stable-area.js'
import type { JsonValue } from '../durable/types.js'
import type { FingerprintOptions } from './fingerprint.js'
import type { ReplyCacheOptions } from './reply-cache.js'

/** Options of {@link once}. Every one is optional; the defaults follow Stripe and the IETF draft. */
export interface OnceOptions {
  /** The StableArea namespace. Default: `c.env.ONCE`. */
  namespace?: (c: Context) => DurableObjectNamespace<StableArea> | undefined
  /** Objects the keys are hashed over (each handles ~500 writes/s). Default 1. Changing it moves keys. */
  shards?: number
  /** Methods that need a key; others pass through. Default POST, PUT, PATCH, DELETE. */
  methods?: string[]
  /** A missing key is a 400 (true) or passes through untouched (false). Default true. */
  required?: boolean
  /** Tenant of the key; two scopes never share a record. Default: SHA-256 of `Authorization`, or '' without one. */
  scope?: (c: Context) => string | Promise<string>
  /** How requests are fingerprinted: options for the default, or your own function (returns any string). */
  fingerprint?: FingerprintOptions | ((c: Context, body: Uint8Array) => string | Promise<string>)
  /** How long a key and its reply are kept. Default 86400 (24 h). */
  ttlSeconds?: number
  /** How long a Worker owns a key before a retry may take over, renewed while the handler runs. Default 30000. */
  leaseMs?: number
  /** A duplicate of a running request waits for its reply ('wait') or gets 409 at once ('reject'). Default 'wait'. */
  inFlight?: 'wait' | 'reject'
  /** Longest wait in 'wait' mode before a 409. Default 10000. */
  waitMs?: number
  /** Largest request body; larger is a 413. Default 1 MiB. */
  maxBodyBytes?: number
  /** Largest reply body stored for replay. Default 8 MiB. */
  maxReplyBytes?: number
  /** Response headers replayed (allow-list). Default: all but hop-by-hop, Set-Cookie and Content-Length. */
  replayHeaders?: string[]
  /** Rebuilds a duplicate's reply from the arguments given to `c.var.once.commit(res, { args })`. */
  onDuplicate?: (args: JsonValue, c: Context) => Response | Promise<Response>
  /** In-isolate cache of committed replies (replays without a round trip), or false. Default 1000 entries / 8 MiB. */
  replayCache?: false | ReplyCacheOptions
}

const fn = functionOption
const headerNames = z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected header names'))
const positiveInt = (max: number) => z.number().int().positive().max(max)

const schema = z.strictObject({
  namespace: fn.optional(),
  shards: positiveInt(4096).optional(),
  methods: z
    .array(z.string().regex(/^[A-Za-z]+$/, 'expected HTTP method names such as "POST"'))
    .min(1)
    .optional(),
  required: z.boolean().optional(),
  scope: fn.optional(),
  fingerprint: z
    .union([
      fn,
      z.strictObject({
        headers: headerNames.optional(),
        normalizeJson: z.boolean().optional(),
      }),
    ])
    .optional(),
  ttlSeconds: positiveInt(365 * 86400).optional(),
  leaseMs: z.number().int().min(100).max(15 * 60_000).optional(),
  inFlight: z.enum(['wait', 'reject']).optional(),
  waitMs: z.number().int().min(0).max(5 * 60_000).optional(),
  maxBodyBytes: positiveInt(100 * 1024 * 1024).optional(),
  maxReplyBytes: positiveInt(24 * 1024 * 1024).optional(),
  replayHeaders: headerNames.optional(),
  onDuplicate: fn.optional(),
  replayCache: z
    .union([
      z.literal(false),
      z.strictObject({ maxEntries: positiveInt(1_000_000).optional(), maxBytes: positiveInt(256 * 1024 * 1024).optional() }),
    ])
    .optional(),
})

/**
 * Checks `options` against the schema, throwing a `TypeError` that names the
 * offending option, so a bad configuration fails when the app starts.
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
