/**
 * RFC 9530 `Content-Digest` for the wire contract (DESIGN §6): the edge
 * sends `sha-256=:<base64>:` of the body (of the empty body when there is
 * none) on every forwarded request, and the signature covers it, so the
 * receiver can check the signature from the headers alone and the body
 * against the digest once it has read it.
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { isInnerList, parseDictionary } from 'structured-headers'

/** Below this, a synchronous hash beats Web Crypto's promise round trip; above, native code wins. */
const SYNC_LIMIT = 64 * 1024

/** One body's header value, kept while the body lives: every attempt, replica and resend of a request sends the same bytes. */
const computed = new WeakMap<Uint8Array, string>()

/**
 * The `Content-Digest` value of a body: `sha-256=:<base64>:`.
 *
 * @param body - the exact bytes sent (empty for no body)
 * @returns the header value
 * @example
 * await contentDigest(new TextEncoder().encode('{"hello": "world"}'))
 * // 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:'
 */
export async function contentDigest(body: Uint8Array): Promise<string> {
  const known = computed.get(body)
  if (known !== undefined) return known
  const hash = body.byteLength <= SYNC_LIMIT ? sha256(body) : new Uint8Array(await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>))
  const value = `sha-256=:${toBase64(hash)}:`
  computed.set(body, value)
  return value
}

/**
 * What a `Content-Digest` header says about a body: it matches (`ok`), the
 * header is absent, unreadable or has no `sha-256` member (`missing`), or
 * it names other bytes (`mismatch`).
 *
 * @example
 * const v: DigestVerdict = 'mismatch'
 */
export type DigestVerdict = 'ok' | 'missing' | 'mismatch'

/**
 * Checks a body against its `Content-Digest` header (the `sha-256` member;
 * other algorithms are ignored).
 *
 * @param header - the header value, or null when absent
 * @param body - the bytes received
 * @returns `ok`, `missing` or `mismatch`
 * @example
 * await checkContentDigest(req.headers.get('content-digest'), body) // 'ok'
 */
export async function checkContentDigest(header: string | null, body: Uint8Array): Promise<DigestVerdict> {
  const expected = sha256Member(header)
  if (expected === undefined) return 'missing'
  const actual = body.byteLength <= SYNC_LIMIT ? sha256(body) : new Uint8Array(await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>))
  if (expected.byteLength !== actual.byteLength) return 'mismatch'
  let diff = 0
  for (let i = 0; i < actual.byteLength; i++) diff |= actual[i]! ^ expected[i]!
  return diff === 0 ? 'ok' : 'mismatch'
}

/**
 * The `sha-256` member of a `Content-Digest` value, when it has a well-formed one.
 *
 * @param header - the header value, or null
 * @returns the 32 digest bytes, or undefined
 * @example
 * sha256Member('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:')?.byteLength // 32
 */
export function sha256Member(header: string | null): Uint8Array | undefined {
  if (header === null) return undefined
  try {
    const member = parseDictionary(header).get('sha-256')
    if (member === undefined || isInnerList(member) || !(member[0] instanceof ArrayBuffer)) return undefined
    return member[0].byteLength === 32 ? new Uint8Array(member[0]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Standard base64 (with padding) of bytes.
 *
 * @param bytes - the data
 * @returns the base64 text
 * @example
 * toBase64(new Uint8Array([1, 2, 3])) // 'AQID'
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.byteLength; i++) binary += String.fromCharCode(bytes[i]!)
  return btoa(binary)
}
