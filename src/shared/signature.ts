/**
 * Request signing of the wire contract (DESIGN §6): RFC 9421 HTTP Message
 * Signatures with HMAC-SHA256, label `once`, over the request's method,
 * path, query, `Content-Digest` (RFC 9530) and its headers, so an origin on
 * any stack verifies with a stock RFC 9421 library. The RFC machinery
 * (signature base, structured fields) is `http-message-sig`, which runs on
 * Workers and Node alike; this module picks what is covered, the
 * parameters, and the checks a receiver makes before it reads the body.
 *
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { createSignatureSync, isSignatureError, type SignerSync, type Verifier, verifySignature } from 'http-message-sig'
import { isInnerList, parseDictionary, type Dictionary, type InnerList } from 'structured-headers'

/** The label of the edge's signature in `Signature-Input` and `Signature`. */
export const SIGNATURE_LABEL = 'once'
/** The `alg` parameter the edge signs with. */
export const SIGNATURE_ALG = 'hmac-sha256'
/** Default lifetime of a signature: `expires` = `created` + this. */
export const SIGNATURE_TTL_SECONDS = 300
/** How far in the future a signature's `created` may lie (the signer's clock may run ahead). */
export const FUTURE_SKEW_SECONDS = 60

/**
 * A resolved signing key: the secret's value and the `keyid` it is known by.
 *
 * @example
 * const key: SigningKey = { keyid: 'ONCE_SIGNING_SECRET', secret: env.ONCE_SIGNING_SECRET }
 */
export interface SigningKey {
  keyid: string
  /** The shared secret; the HMAC key is its UTF-8 bytes. */
  secret: string
}

/**
 * A request about to be sent: method, absolute URL and every header it carries.
 *
 * @example
 * const out: OutgoingRequest = { method: 'POST', url: 'https://eu.example.com/accounts/a1', headers }
 */
export interface OutgoingRequest {
  method: string
  url: string
  headers: Headers
}

/**
 * The two header values of a signature.
 *
 * @example
 * headers.set('signature-input', fields.signatureInput); headers.set('signature', fields.signature)
 */
export interface SignatureFields {
  signatureInput: string
  signature: string
}

/**
 * The shortest signing secret used: an HMAC key of fewer characters can be
 * guessed offline from one signed request (RFC 2104 asks for keys of the
 * hash's length, 32 bytes for SHA-256; 16 random characters is the floor).
 *
 * @example
 * secret.length >= MIN_SECRET_LENGTH
 */
export const MIN_SECRET_LENGTH = 16

/**
 * Headers a signature never covers: they describe a hop, so a proxy on the
 * way may rewrite them (and the signature headers themselves).
 */
const NOT_COVERED = new Set(['signature', 'signature-input', 'forwarded', 'via', 'x-real-ip', 'true-client-ip', 'cdn-loop'])

/** Printable ASCII and tab: what RFC 9421 can cover byte for byte on every stack. */
const FIELD_VALUE = /^[\x20-\x7e\t]*$/

/**
 * Whether a header of a request is covered by the edge's signature:
 * everything it sends but hop descriptions (`Forwarded`, `Via`,
 * `X-Forwarded-*`, …) and values that are not ASCII.
 *
 * @param name - lower-case header name
 * @param value - its value
 * @returns true when the signature covers it
 * @example
 * isCovered('content-type', 'application/json') // true
 * isCovered('x-forwarded-for', '10.0.0.1') // false
 */
export function isCovered(name: string, value: string): boolean {
  return !describesHop(name) && FIELD_VALUE.test(value)
}

/** A header that describes a hop (a proxy on the way may rewrite it), which no signature covers. */
function describesHop(name: string): boolean {
  return NOT_COVERED.has(name) || name.startsWith('x-forwarded-')
}

/**
 * Signs a request as the edge does (DESIGN §6): label `once`, parameters
 * `created`, `expires` (created + 300 s unless given), `keyid` and
 * `alg="hmac-sha256"`, covering `"@method"`, `"@path"`, `"@query"` when the
 * URL has a query, and every header of `request` that {@link isCovered}
 * (so `Content-Digest`, `Content-Type`, `Idempotency-Key`, every `Once-*`
 * header and the forwarded ones). Set `Content-Digest` before signing.
 *
 * @param key - the secret and its keyid
 * @param request - method, URL and the headers to send
 * @param options - the clock (`nowSeconds`) and the lifetime (`ttlSeconds`)
 * @returns the `Signature-Input` and `Signature` values
 * @example
 * headers.set('content-digest', await contentDigest(body))
 * const { signatureInput, signature } = signRequest({ keyid: 'ONCE_SIGNING_SECRET', secret }, { method: 'POST', url, headers })
 * headers.set('signature-input', signatureInput)
 * headers.set('signature', signature)
 */
export function signRequest(key: SigningKey, request: OutgoingRequest, options: { nowSeconds?: number; ttlSeconds?: number } = {}): SignatureFields {
  const created = Math.floor(options.nowSeconds ?? Date.now() / 1000)
  // As fetch will send it (dot segments resolved, characters escaped, no fragment), which is what the origin sees.
  const target = new URL(request.url)
  target.hash = ''
  const targetUri = target.href
  const components = ['@method', '@path']
  if (hasQuery(targetUri)) components.push('@query')
  const fields: { name: string; value: string }[] = []
  request.headers.forEach((value, name) => {
    if (!isCovered(name, value)) return
    components.push(name)
    fields.push({ name, value })
  })
  const signed = createSignatureSync(
    { kind: 'request', method: request.method.toUpperCase(), targetUri, fields },
    {
      label: SIGNATURE_LABEL,
      components,
      parameters: { created, expires: created + (options.ttlSeconds ?? SIGNATURE_TTL_SECONDS), keyid: key.keyid, alg: SIGNATURE_ALG },
      signer: hmacSha256(key.secret),
    },
  )
  return { signatureInput: signed.signatureInput, signature: signed.signature }
}

/**
 * Why a signature was refused: none sent (`missing`), unreadable or
 * lacking a required parameter (`malformed`), signed with a `keyid` this
 * receiver does not hold (`unknown-key`), past `expires` (`expired`),
 * created too far in the future (`future`), not covering what it must
 * (`uncovered`), or not matching the request (`mismatch`).
 *
 * @example
 * const why: SignatureFailure = 'uncovered'
 */
export type SignatureFailure = 'missing' | 'malformed' | 'unknown-key' | 'expired' | 'future' | 'uncovered' | 'mismatch'

/**
 * Result of {@link verifyRequest}.
 *
 * @example
 * const v: SignatureVerdict = { ok: false, reason: 'expired', detail: 'The signature expired at 1700000300.' }
 */
export type SignatureVerdict = { ok: true; keyid: string } | { ok: false; reason: SignatureFailure; detail: string }

/**
 * Options of {@link verifyRequest}.
 *
 * @example
 * const opts: VerifyRequestOptions = { secrets: { ONCE_SIGNING_SECRET: process.env.ONCE_SIGNING_SECRET! } }
 */
export interface VerifyRequestOptions {
  /** The secrets this receiver holds, by keyid. */
  secrets: Readonly<Record<string, string>>
  /** The current time in unix seconds. Default: the clock. */
  nowSeconds?: number
}

/** Headers a signature must cover whenever the request carries them. */
const MUST_COVER = new Set(['content-type', 'idempotency-key'])

/**
 * The first header of a request to be signed that the signature cannot
 * cover though the origin may act on it: any header but the hop
 * descriptions (`Forwarded`, `Via`, `X-Forwarded-*`, …) whose value is
 * outside printable ASCII (RFC 9421 covers values byte for byte only as
 * ASCII on every stack). Sent anyway, the origin's app would read a header
 * nobody signed, or (`Content-Type`, which {@link verifyRequest} requires
 * covered) every receiver would refuse it on every attempt; so the edge
 * refuses it before it stores or sends anything. `Once-*` and
 * `Idempotency-Key` are ASCII by construction.
 *
 * @param headers - the headers to be sent, lower-case names
 * @param write - a write (any method but the safe ones): every header checked; a read, which is never stored
 *   or resent, only the ones a receiver requires covered (`Content-Type`), the others forwarded uncovered (a
 *   browser's raw UTF-8 cookie must not make every read of its user fail)
 * @returns the header's name, or undefined when every one can be covered
 * @example
 * unsignableHeader([['content-type', 'text/plain; name="résumé.txt"']]) // 'content-type'
 * unsignableHeader([['x-note', 'pay to René']]) // 'x-note'
 */
export function unsignableHeader(headers: readonly (readonly [string, string])[], write = true): string | undefined {
  for (const [name, value] of headers) if ((write ? !describesHop(name) : MUST_COVER.has(name)) && !isCovered(name, value)) return name
  return undefined
}

/**
 * Checks the edge's signature of a request from its headers alone (the
 * body is not read: `Content-Digest` is covered, so check the body against
 * it with `checkContentDigest` afterwards). Refused: no `once` signature;
 * a `keyid` not in `secrets`; `created`, `expires`, `keyid` missing; an
 * `alg` other than hmac-sha256; past `expires`; `created` more than 60 s
 * ahead; not covering `"@method"`, `"@path"`, `"content-digest"`,
 * `"@query"` when the URL has a query, or `Content-Type`, `Idempotency-Key`
 * or any `Once-*` header the request carries; an HMAC that does not match.
 *
 * @param request - the request as received (its URL and headers)
 * @param options - the secrets by keyid, and the clock
 * @returns `{ ok: true, keyid }`, or `{ ok: false, reason, detail }`
 * @example
 * const verdict = await verifyRequest(c.req.raw, { secrets: { ONCE_SIGNING_SECRET: secret } })
 * if (!verdict.ok) return c.text(verdict.detail, 401)
 */
export async function verifyRequest(request: Request, options: VerifyRequestOptions): Promise<SignatureVerdict> {
  const refuse = (reason: SignatureFailure, detail: string): SignatureVerdict => ({ ok: false, reason, detail })
  const inputHeader = request.headers.get('signature-input')
  const signatureHeader = request.headers.get('signature')
  if (inputHeader === null || signatureHeader === null) return refuse('missing', 'The request has no Signature-Input and Signature: this origin accepts only requests signed by the edge.')
  let input: InnerList | undefined
  try {
    const member = (parseDictionary(inputHeader) as Dictionary).get(SIGNATURE_LABEL)
    input = member && isInnerList(member) ? member : undefined
  } catch {
    return refuse('malformed', 'Signature-Input is not a structured-field dictionary.')
  }
  if (!input) return refuse('missing', `The request has no signature labelled "${SIGNATURE_LABEL}".`)
  const params = input[1]
  const created = params.get('created')
  const expires = params.get('expires')
  const keyid = params.get('keyid')
  const alg = params.get('alg')
  if (typeof created !== 'number' || typeof expires !== 'number' || typeof keyid !== 'string' || !Number.isInteger(created) || !Number.isInteger(expires)) {
    return refuse('malformed', 'The signature needs the parameters created, expires (integers) and keyid (a string).')
  }
  if (alg !== undefined && alg !== SIGNATURE_ALG) return refuse('malformed', `The signature's alg must be "${SIGNATURE_ALG}".`)
  const secret = Object.hasOwn(options.secrets, keyid) ? options.secrets[keyid] : undefined
  if (secret === undefined) return refuse('unknown-key', `This origin holds no secret with keyid ${JSON.stringify(keyid.slice(0, 64))}.`)
  const now = Math.floor(options.nowSeconds ?? Date.now() / 1000)
  if (now > expires) return refuse('expired', `The signature expired at ${expires} (now ${now}).`)
  if (created > now + FUTURE_SKEW_SECONDS) return refuse('future', `The signature was created at ${created}, more than ${FUTURE_SKEW_SECONDS} s after now (${now}).`)
  const covered = new Set(input[0].map(([name]) => (typeof name === 'string' ? name : '')))
  const required = ['@method', '@path', 'content-digest']
  if (hasQuery(request.url)) required.push('@query')
  request.headers.forEach((_, name) => {
    if (MUST_COVER.has(name) || name.startsWith('once-')) required.push(name)
  })
  const missing = required.filter((name) => !covered.has(name))
  if (missing.length > 0) return refuse('uncovered', `The signature does not cover ${missing.map((n) => `"${n}"`).join(', ')}.`)
  try {
    await verifySignature(request, {
      label: SIGNATURE_LABEL,
      policy: { algorithms: [SIGNATURE_ALG], requiredComponents: required, requiredParameters: ['created', 'expires', 'keyid'], clockSkew: FUTURE_SKEW_SECONDS, now },
      resolveVerifier: () => hmacSha256(secret),
    })
  } catch (err) {
    // A covered header that is gone (a no-op resend stripped of Once-Noop) is a request that was altered, like a wrong HMAC.
    if (isSignatureError(err) && (err.code === 'VerificationFailed' || err.code === 'MissingField')) {
      return refuse('mismatch', 'The signature does not match this request (method, path, query, a covered header, or the secret differ).')
    }
    return refuse('malformed', `The signature cannot be checked: ${err instanceof Error ? err.message : String(err)}.`)
  }
  return { ok: true, keyid }
}

/** An HMAC-SHA256 signer and verifier, as `http-message-sig` calls them. */
type HmacSha256 = SignerSync & Verifier

const keyed = new Map<string, HmacSha256>()
const encoder = new TextEncoder()

/**
 * HMAC-SHA256 over a secret, as a signer and verifier for
 * `http-message-sig`. A string secret is keyed by its UTF-8 bytes
 * (DESIGN §6); bytes are used as they are (RFC 9421's own example decodes a
 * base64 key). The keyed state of a string secret is kept: a few secrets at
 * most are live, and keying costs two hash blocks per use otherwise. The
 * verifier compares in constant time.
 *
 * @param secret - the secret (string: its UTF-8 bytes) or the key bytes
 * @returns the signer/verifier
 * @example
 * const mac = hmacSha256('a-shared-secret').sign(new TextEncoder().encode('base'))
 */
export function hmacSha256(secret: string | Uint8Array): HmacSha256 {
  if (typeof secret === 'string') {
    let known = keyed.get(secret)
    if (!known) {
      if (keyed.size >= 16) keyed.delete(keyed.keys().next().value as string)
      keyed.set(secret, (known = macOf(encoder.encode(secret))))
    }
    return known
  }
  return macOf(secret)
}

function macOf(key: Uint8Array): HmacSha256 {
  const template = hmac.create(sha256, key)
  const sign = (data: Uint8Array): Uint8Array => template.clone().update(data).digest()
  return {
    algorithm: SIGNATURE_ALG,
    sign,
    verify(data, signature) {
      const mac = sign(data)
      if (signature.byteLength !== mac.byteLength) return false
      let diff = 0
      for (let i = 0; i < mac.byteLength; i++) diff |= mac[i]! ^ signature[i]!
      return diff === 0
    },
  }
}

/** Whether an absolute URL has a query (then `"@query"` is covered). */
function hasQuery(url: string): boolean {
  const q = url.indexOf('?')
  return q >= 0 && q < url.length - 1 && !url.slice(0, q).includes('#')
}
