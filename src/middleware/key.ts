import type { Context } from 'hono'
import { parseItem } from 'structured-headers'
import { problemException } from './problem.js'
import { trimOws } from '../shared/ows.js'

/**
 * Longest key accepted, as Stripe does.
 *
 * @example
 * parseIdempotencyKey('"' + 'a'.repeat(MAX_KEY_LENGTH + 1) + '"') // { ok: false, error: 'too-long' }
 */
export const MAX_KEY_LENGTH = 255

const PRINTABLE = /^[\x20-\x7e]+$/
const BARE = /^[\x21\x23-\x7e]+$/

/** Why a key was refused, for the 400 problem's detail. */
export type KeyError = 'empty' | 'too-long' | 'malformed'

/**
 * Parses an `Idempotency-Key` header value. The IETF draft makes it an
 * RFC 8941 sf-string (`"8e03978e-40d5"`); a bare token, including UUIDs that
 * start with a digit (which RFC 8941 alone would reject), is accepted as
 * Stripe's clients send them. The key is 1–255 printable ASCII characters.
 *
 * @param header - the raw header value
 * @returns the key, or the reason it is refused
 * @example
 * parseIdempotencyKey('"abc"') // { ok: true, key: 'abc' }
 * parseIdempotencyKey('8e03978e-40d5-43e8-bc93-6894a57f9324') // { ok: true, key: '8e03…' }
 * parseIdempotencyKey('""') // { ok: false, error: 'empty' }
 */
export function parseIdempotencyKey(header: string): { ok: true; key: string } | { ok: false; error: KeyError } {
  // Only HTTP's optional whitespace (SP, HTAB) is trimmed: String#trim would also drop NBSP, BOM, VT,
  // U+2028 or U+3000 and let `abc\u00a0` alias `abc`. Anything else outside printable ASCII is refused.
  const raw = trimOws(header)
  let key: string | undefined
  if (raw.startsWith('"')) {
    try {
      const [value] = parseItem(raw)
      if (typeof value === 'string') key = value
    } catch {
      // malformed sf-string: falls through to the error below
    }
    if (key === undefined) return { ok: false, error: 'malformed' }
  } else {
    // A bare value: an sf-token is a subset of this, and so is a UUID.
    if (raw === '') return { ok: false, error: 'empty' }
    if (!BARE.test(raw)) return { ok: false, error: 'malformed' }
    key = raw
  }
  if (key.length === 0) return { ok: false, error: 'empty' }
  if (key.length > MAX_KEY_LENGTH) return { ok: false, error: 'too-long' }
  if (!PRINTABLE.test(key)) return { ok: false, error: 'malformed' }
  return { ok: true, key }
}

const KEY_ERRORS = {
  empty: 'The Idempotency-Key header is empty.',
  'too-long': 'The Idempotency-Key is longer than 255 characters.',
  malformed: 'The Idempotency-Key must be a structured-field string ("...") or a bare token of printable ASCII.',
} as const satisfies Record<KeyError, string>

/**
 * The key of a request, as `once()` and `onceObject()` read it: the parsed
 * `Idempotency-Key`, or undefined when there is none and none is required.
 *
 * @param c - the request context
 * @param config - whether a key is required
 * @returns the key, or undefined
 * @throws HTTPException carrying a 400 problem: `key-missing` (required, none given) or `key-malformed`
 * @example
 * const key = readKey(c, config) // 'order-17' for Idempotency-Key: "order-17"
 */
export function readKey(c: Context, config: { required: boolean }): string | undefined {
  const header = c.req.header('idempotency-key')
  if (header === undefined) {
    if (!config.required) return undefined
    throw problemException('key-missing', {
      detail: `${c.req.method} requests need an Idempotency-Key header, e.g. Idempotency-Key: "${crypto.randomUUID()}".`,
      instance: c.req.path,
    })
  }
  const parsed = parseIdempotencyKey(header)
  if (!parsed.ok) throw problemException('key-malformed', { detail: KEY_ERRORS[parsed.error], instance: c.req.path })
  return parsed.key
}
