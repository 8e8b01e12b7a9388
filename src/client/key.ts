import { trimOws } from '../shared/ows.js'

/**
 * The key inside an `Idempotency-Key` header value: an RFC 8941 sf-string
 * (`"abc"`, with `\"` and `\\` escapes) or a bare value (`abc`), as the
 * server accepts them. A regex, not a structured-headers parser, keeps the
 * client small.
 *
 * @param header - the header value
 * @returns the bare key, or undefined when the value is neither form
 * @example
 * keyOfHeader('"abc"') // 'abc'
 * keyOfHeader('abc') // 'abc'
 * keyOfHeader('"abc') // undefined
 */
export function keyOfHeader(header: string): string | undefined {
  // As the server reads it: only HTTP's optional whitespace (SP, HTAB) is trimmed. String#trim would also drop
  // NBSP, VT or FF, and send `abc\u00a0` as `"abc"`: the alias of another call's key that the server refuses.
  const value = trimOws(header)
  const quoted = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])+)"$/.exec(value)
  if (quoted) return quoted[1]!.replace(/\\(["\\])/g, '$1')
  return /^[\x21\x23-\x7e]+$/.test(value) ? value : undefined
}

/**
 * The `Idempotency-Key` header value for a key: always the sf-string form.
 * Use it to send a key again later (`OnceFetchError#key` is the bare key,
 * which may hold a space or a `"`).
 *
 * @param key - the bare key
 * @returns the key quoted, `"` and `\` escaped
 * @example
 * headerOfKey('abc') // '"abc"'
 */
export function headerOfKey(key: string): string {
  return `"${key.replace(/["\\]/g, '\\$&')}"`
}
