/**
 * The wire contract between the edge and origin servers (DESIGN §6): header
 * names and the parsers of the ordering headers. Both sides import this one
 * module, so they cannot drift apart. Signing is `signature.ts`, the body
 * digest `content-digest.ts`, the principal `principal.ts`.
 *
 * @module
 */
import { parseItem } from 'structured-headers'

/**
 * The headers of the wire contract, by role.
 *
 * @example
 * headers.set(ONCE_HEADERS.requestId, c.var.once.requestId)
 * const seq = parseSequence(req.headers.get(ONCE_HEADERS.sequence) ?? '')
 */
export const ONCE_HEADERS = {
  /** The client's key, forwarded as it came. */
  idempotencyKey: 'Idempotency-Key',
  /** Stable id of one logical request: the same on every attempt, failover, replica and resend. */
  requestId: 'Once-Request-Id',
  /** Ordering domain of an ordered request. */
  domain: 'Once-Domain',
  /** The request's sequence number in its domain: 1, 2, … */
  sequence: 'Once-Sequence',
  /** Which attempt this is: 1, 2, … (informational). */
  attempt: 'Once-Attempt',
  /** `?1`: record the sequence slot as applied without running anything. */
  noop: 'Once-Noop',
  /** RFC 9530 digest of the body (`sha-256=:…:`), on every forwarded request; covered by the signature. */
  contentDigest: 'Content-Digest',
  /** RFC 9421 signature parameters; the edge's is labelled `once` (see `signRequest`). */
  signatureInput: 'Signature-Input',
  /** RFC 9421 signature value. */
  signature: 'Signature',
  /** On an origin's 409: the sequence it needs next. */
  expectedSequence: 'Once-Expected-Sequence',
  /** On the edge's answer: the name of the origin that served it. */
  origin: 'Once-Origin',
  /** On every origin answer: `?1` the answer is the recorded result of applying the request; `?0` nothing was applied. */
  applied: 'Once-Applied',
  /** Who made the request, as the edge authenticated it: an sf-dictionary (`iss`, `sub`; or `scope`). */
  principal: 'Once-Principal',
} as const

const DIGITS = /^[0-9]{1,16}$/

/**
 * Reads `Once-Sequence`, `Once-Expected-Sequence` or `Once-Attempt`: a
 * positive safe integer in plain decimal digits without leading zeros.
 * Anything else (empty, signs, spaces, `0`, `007`, `1e3`, too large) is invalid.
 *
 * @param value - the header value
 * @returns the number, or undefined when invalid
 * @example
 * parseSequence('42') // 42
 * parseSequence('-1') // undefined
 */
export function parseSequence(value: string): number | undefined {
  if (!DIGITS.test(value) || value.startsWith('0')) return undefined
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : undefined
}

/**
 * The safe methods (RFC 9110 §9.2.1): never recorded, deduped or
 * replicated; a write is every other method. One set for the edge and the
 * receiver, so both tell a read from a write alike.
 *
 * @example
 * SAFE_METHODS.has('GET') // true
 */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Reads a header that is an RFC 8941 Boolean item (`Once-Applied`,
 * `Once-Noop`): `?1` true, `?0` false; parameters, which an item may carry
 * (`?0;reason="busy"`), are allowed and ignored.
 *
 * @param value - the header value
 * @returns the flag, or undefined when the value is not a Boolean item
 * @example
 * parseBoolean('?1') // true
 * parseBoolean('?0;reason="busy"') // false
 * parseBoolean('yes') // undefined
 */
export function parseBoolean(value: string): boolean | undefined {
  try {
    const [item] = parseItem(value)
    return typeof item === 'boolean' ? item : undefined
  } catch {
    return undefined
  }
}

/**
 * Reads `Once-Noop` (see {@link parseBoolean}).
 *
 * @param value - the header value
 * @returns the flag, or undefined when invalid
 * @example
 * parseNoop('?1') // true
 */
export const parseNoop = parseBoolean
