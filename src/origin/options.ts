import * as z from 'zod/mini'
import { assertOptions } from '../shared/options.js'
import type { ReceiverStore } from './types.js'

/**
 * Options of `onceReceiver()`. Only `store` is required.
 *
 * @typeParam Tx - the store's transaction handle, `c.var.receiver.tx`
 * @example
 * const options: ReceiverOptions<DatabaseSync> = { store: sqliteStore(db), secret: process.env.ONCE_SECRET, waitMs: 2000 }
 */
export interface ReceiverOptions<Tx = unknown> {
  /** Where dedupe records and sequences live, with the handler's writes: `memoryStore()`, `sqliteStore(db)`, `d1Store(db)` or your own. */
  store: ReceiverStore<Tx>
  /**
   * The secret shared with the edge (`proxy({ secret })`). When set, every
   * request must carry a valid `Once-Signature` (else 401), and a request to a
   * deduped method must carry `Once-Request-Id`. Give a list to rotate: the
   * new secret and the old one, until the edge signs with the new one only.
   */
  secret?: string | string[]
  /** Largest clock difference accepted on a signature, either way. Default 300 (5 minutes). */
  toleranceSeconds?: number
  /** How long a repeat of a running request (or a request whose domain is busy) waits before a 409 with `Retry-After`. Default 5000. */
  waitMs?: number
  /** Methods that are deduped and ordered; others pass through after the signature check. Default POST, PUT, PATCH, DELETE. */
  methods?: string[]
  /**
   * How long a request that arrives ahead of its turn (an earlier sequence
   * of its domain has not arrived yet) waits for it before answering `409`
   * with `Once-Expected-Sequence`. Concurrent requests of one domain can
   * overtake each other on the way; a short wait spares the edge a resend.
   * 0 answers the gap at once. Keep it well below the edge's `timeoutMs`. Default 250.
   */
  gapWaitMs?: number
}

const isStore = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return ['apply', 'nextSequence', 'nextSequences', 'applied', 'prune'].every((m) => typeof s[m] === 'function')
}

const secret = z.string().check(z.minLength(1), z.maxLength(1024))
const int = (min: number, max: number) => z.optional(z.number().check(z.int(), z.gte(min), z.lte(max)))

const schema = z.strictObject({
  store: z.custom<ReceiverStore>(isStore, 'expected a ReceiverStore: memoryStore(), sqliteStore(db), d1Store(db) or an object with apply, nextSequence, nextSequences, applied and prune'),
  secret: z.optional(z.union([secret, z.array(secret).check(z.minLength(1), z.maxLength(8))])),
  toleranceSeconds: int(1, 24 * 3600),
  waitMs: int(0, 5 * 60_000),
  methods: z.optional(z.array(z.string().check(z.regex(/^[A-Za-z]+$/, 'expected HTTP method names such as "POST"'))).check(z.minLength(1))),
  gapWaitMs: int(0, 60_000),
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
  assertOptions(schema, options, 'onceReceiver()')
}
