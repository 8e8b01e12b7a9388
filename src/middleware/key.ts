import { parseItem } from 'structured-headers'

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
  const raw = header.replace(/^[ \t]+|[ \t]+$/g, '')
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
