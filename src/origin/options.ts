import * as z from 'zod/mini'
import { assertOptions, optionsError } from '../shared/options.js'
import { MIN_SECRET_LENGTH } from '../shared/signature.js'
import type { ReceiverStore } from './types.js'

/**
 * Options of `onceReceiver()`. Only `store` is required.
 *
 * @typeParam Tx - the store's transaction handle, `c.var.receiver.tx`
 * @example
 * const options: ReceiverOptions<DatabaseSync> = { store: sqliteStore(db), secrets: { ONCE_SIGNING_SECRET: process.env.ONCE_SIGNING_SECRET! }, waitMs: 2000 }
 */
export interface ReceiverOptions<Tx = unknown> {
  /** Where dedupe records and sequences live, with the handler's writes: `memoryStore()`, `sqliteStore(db)`, `d1Store(db)` or your own. */
  store: ReceiverStore<Tx>
  /**
   * The secrets shared with the edge, by keyid (the edge's
   * `proxy({ secret: { env, keyid } })`; keyid defaults to the env name, e.g.
   * `{ ONCE_SIGNING_SECRET: '…' }`). When set, every request must carry the
   * edge's valid RFC 9421 signature (else 401 `signature-invalid`), checked
   * from the headers before the body is read: signed with a keyid held
   * here, not past `expires`, created at most 60 s ahead, covering every
   * `Once-*` header it carries; and a body matching its `Content-Digest`
   * (else 400). A request to a method in `methods` must then carry
   * `Once-Request-Id`. Hold two during a rotation, until the edge signs
   * with the new keyid only.
   */
  secrets?: Record<string, string>
  /** How long a repeat of a running request (or a request whose domain is busy) waits before a 409 with `Retry-After`. Default 5000. */
  waitMs?: number
  /**
   * Methods that require `Once-Request-Id` when `secrets` are set (401
   * `request-id-missing` without one). Whatever it lists, every request
   * other than GET, HEAD, OPTIONS and TRACE that carries `Once-Request-Id` is
   * deduped (and ordered when it carries a domain and sequence). Default
   * POST, PUT, PATCH, DELETE.
   */
  methods?: string[]
  /** Largest request body read; a larger one is refused with 413 `body-too-large` before it is buffered whole. Default 1048576 (1 MiB). */
  maxBodyBytes?: number
  /**
   * How long a request that arrives ahead of its turn (an earlier sequence
   * of its domain has not arrived yet) waits for it before answering `409`
   * with `Once-Expected-Sequence`. Concurrent requests of one domain can
   * overtake each other on the way; a short wait spares the edge a resend.
   * 0 answers the gap at once. Keep it well below the edge's `timeoutMs`. Default 250.
   */
  gapWaitMs?: number
  /**
   * How long a deduped handler may run, in ms. Past it the receiver gives the request up: its writes are rolled
   * back (a statement it runs later through `c.var.receiver.tx` throws, or is dropped), its locks are released,
   * and it answers 504 `handler-timeout` (`Once-Applied: ?0`; the edge sends it again). A handler that never
   * settles (a `fetch()` without a timeout) would otherwise hold its request id, its domain and, on
   * `sqliteStore`, the connection for every other request, until the process restarts. Default 30000.
   */
  maxRunMs?: number
}

const isStore = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return ['apply', 'nextSequence', 'nextSequences', 'applied', 'prune'].every((m) => typeof s[m] === 'function')
}

const secret = z
  .string('expected the secret as a string (an environment variable that is not set gives undefined: check its name)')
  .check(z.minLength(1, 'the secret is empty (an environment variable that is not set, or set to nothing?): give the one the edge signs with'), z.maxLength(1024))
/** A keyid travels as an sf-string in `Signature-Input`. */
const KEYID = /^[\x20-\x7e]{1,128}$/
const int = (min: number, max: number) => z.optional(z.number().check(z.int(), z.gte(min), z.lte(max)))

const schema = z.strictObject({
  store: z.custom<ReceiverStore>(isStore, 'expected a ReceiverStore: memoryStore(), sqliteStore(db), d1Store(db) or an object with apply, nextSequence, nextSequences, applied and prune'),
  secrets: z.optional(
    z.record(z.string().check(z.regex(KEYID, 'expected keyids of 1–128 printable ASCII characters')), secret).check(
      z.refine((r) => Object.keys(r).length >= 1 && Object.keys(r).length <= 8, 'expected 1 to 8 secrets, by keyid'),
    ),
  ),
  maxBodyBytes: int(1, 100 * 1024 * 1024),
  waitMs: int(0, 5 * 60_000),
  methods: z.optional(z.array(z.string().check(z.regex(/^[A-Za-z]+$/, 'expected HTTP method names such as "POST"'))).check(z.minLength(1))),
  gapWaitMs: int(0, 60_000),
  maxRunMs: int(1, 15 * 60_000),
})

/**
 * Checks `onceReceiver()` options, throwing a `TypeError` that names each bad
 * option (`hono-once: invalid onceReceiver() options: waitMs: …`).
 *
 * @param options - what the user passed
 * @throws TypeError naming each bad option
 * @example
 * validateReceiverOptions({ store: memoryStore(), waitMs: -1 }) // TypeError: … waitMs: expected a number >= 0
 */
export function validateReceiverOptions(options: unknown): void {
  const o = options as { secret?: unknown; toleranceSeconds?: unknown } | null
  if (o && typeof o === 'object' && ('secret' in o || 'toleranceSeconds' in o)) {
    throw optionsError('onceReceiver()', [
      `${'secret' in o ? 'secret' : 'toleranceSeconds'}: replaced by secrets: { [keyid]: secret } (RFC 9421 signatures carry their keyid, created and expires)`,
    ])
  }
  assertOptions(schema, options, 'onceReceiver()')
  // The edge signs with no secret shorter than MIN_SECRET_LENGTH (it can be guessed offline from one signed request);
  // a receiver still accepts one, so a rotation off it holds the old and the new while the edge moves, and says so.
  for (const [keyid, value] of Object.entries((options as { secrets?: Record<string, string> }).secrets ?? {})) {
    if (value.length < MIN_SECRET_LENGTH) {
      console.warn(
        `hono-once: onceReceiver() secrets.${keyid} is shorter than ${MIN_SECRET_LENGTH} characters: the edge does not sign with it. ` +
          'Add a random one (openssl rand -base64 32) under a new keyid, move the edge to it, then remove this one.',
      )
    }
  }
}
