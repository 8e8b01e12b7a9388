/**
 * `Once-Principal` (DESIGN §6): who made a forwarded request, as the edge
 * authenticated it, so origins never need the client's credentials. An
 * RFC 8941 dictionary: `iss="…", sub="…"` for a verified JWT, `scope="…"`
 * for a configured scope or the opaque Authorization-hash fallback. Values
 * that are not printable ASCII travel as RFC 9651 Display Strings (`%"…"`).
 *
 * @module
 */
import { DisplayString, isInnerList, parseDictionary, type Dictionary } from 'structured-headers'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

/**
 * Who made a request: the issuer and subject of a verified JWT, or the
 * scope the edge keyed it under.
 *
 * @example
 * const p: Principal = { iss: 'https://auth.example.com', sub: 'user-17' }
 */
export type Principal = { iss?: string | undefined; sub: string } | { scope: string }

const PRINTABLE = /^[\x20-\x7e]*$/
/**
 * Longest value carried as it is, in bytes as it travels (a non-ASCII character takes 6 to 12): a principal names
 * someone, it is not a payload, and the edge's own headers must leave the forwarded ones room within an origin's limit.
 */
const MAX_VALUE_BYTES = 1024
/** What a value sent as its hash starts with; a value that starts with it is sent hashed too, so the two never meet. */
const HASHED = 'sha-256:'
/** A surrogate that is not half of a pair: no UTF-8 (nor Display String) holds it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const encoder = new TextEncoder()

/**
 * A principal's value as it travels (the sf-string or Display String of one
 * member), one to one: the value itself when it is well-formed Unicode, does
 * not start with `sha-256:` and takes at most {@link MAX_VALUE_BYTES} bytes so
 * written; else `sha-256:` and the hex SHA-256 of its UTF-8 bytes (a lone
 * surrogate as its three WTF-8 bytes, so two ill-formed values never hash
 * alike). Never cut: two callers whose values differ past the limit, or only
 * in a lone surrogate, stay two at the origin.
 */
function item(value: string): string {
  // Written, a value takes at least its length and two quotes: a longer one is not written whole to find that out.
  if (value.length <= MAX_VALUE_BYTES && !value.startsWith(HASHED) && !LONE_SURROGATE.test(value)) {
    const written = serialized(value)
    if (written.length <= MAX_VALUE_BYTES) return written
  }
  return serialized(HASHED + bytesToHex(sha256(LONE_SURROGATE.test(value) ? wtf8(value) : encoder.encode(value))))
}

/** UTF-8 that encodes a lone surrogate as the three bytes of its code point (WTF-8) instead of U+FFFD: one to one over every JS string. */
function wtf8(value: string): Uint8Array {
  const out: number[] = []
  for (const ch of value) {
    const cp = ch.codePointAt(0)!
    if (cp < 0x80) out.push(cp)
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63))
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63))
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63))
  }
  return Uint8Array.from(out)
}

/**
 * The `Once-Principal` header value of a principal. Each value travels as
 * {@link item} writes it: as it is, or past 1024 bytes so written (or not
 * well-formed, or starting with `sha-256:`) as `sha-256:<hex>`, so distinct
 * principals always give distinct headers.
 *
 * @param principal - who made the request
 * @returns the header value
 * @example
 * principalHeader({ iss: 'https://auth.example.com', sub: 'user-17' }) // 'iss="https://auth.example.com", sub="user-17"'
 * principalHeader({ scope: 'tenant-42' }) // 'scope="tenant-42"'
 */
export function principalHeader(principal: Principal): string {
  const members: string[] = []
  if ('scope' in principal) members.push(`scope=${item(principal.scope)}`)
  else {
    if (principal.iss !== undefined && principal.iss !== '') members.push(`iss=${item(principal.iss)}`)
    members.push(`sub=${item(principal.sub)}`)
  }
  return members.join(', ')
}

/**
 * A well-formed value as an sf-string when printable ASCII, else a Display
 * String (RFC 9651 §4.1.11). Written here, not by `structured-headers` 2.1,
 * whose serializer writes a byte below 0x10 as one hex digit (`%9` for a tab),
 * which its parser refuses and which runs into the next character (`"\ta"`
 * becomes `%9a`, one byte).
 */
function serialized(value: string): string {
  if (PRINTABLE.test(value)) return `"${value.replace(/[\\"]/g, '\\$&')}"`
  let out = '%"'
  for (const byte of encoder.encode(value)) {
    out += byte === 0x25 || byte === 0x22 || byte < 0x20 || byte > 0x7e ? `%${byte.toString(16).padStart(2, '0')}` : String.fromCharCode(byte)
  }
  return `${out}"`
}

/**
 * Reads a `Once-Principal` header.
 *
 * @param value - the header value, or null when absent
 * @returns the principal, or undefined when absent or unreadable
 * @example
 * parsePrincipal('iss="https://auth.example.com", sub="user-17"') // { iss: 'https://auth.example.com', sub: 'user-17' }
 */
export function parsePrincipal(value: string | null): Principal | undefined {
  if (value === null) return undefined
  let dict: Dictionary
  try {
    dict = parseDictionary(value)
  } catch {
    return undefined
  }
  const text = (key: string): string | undefined => {
    const member = dict.get(key)
    if (member === undefined || isInnerList(member)) return undefined
    const v = member[0]
    return typeof v === 'string' ? v : v instanceof DisplayString ? v.toString() : undefined
  }
  const sub = text('sub')
  if (sub !== undefined) return { iss: text('iss'), sub }
  const scope = text('scope')
  return scope === undefined ? undefined : { scope }
}
