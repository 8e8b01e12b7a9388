/**
 * The wire contract between the edge and origin servers (DESIGN §6): header
 * names, request signing, and the parsers of the ordering headers. Both sides
 * import this one module, so they cannot drift apart. Web Crypto only: runs on
 * Workers and on Node ≥ 20.
 *
 * @module
 */
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
  /** `t=<unix seconds>,v1=<hex HMAC-SHA256>`; see {@link signOnceRequest}. */
  signature: 'Once-Signature',
  /** On an origin's 409: the sequence it needs next. */
  expectedSequence: 'Once-Expected-Sequence',
  /** On the edge's answer: the name of the origin that served it. */
  origin: 'Once-Origin',
  /** On every origin answer: `?1` the answer is the recorded result of applying the request; `?0` nothing was applied. */
  applied: 'Once-Applied',
  /** Who made the request, as the edge authenticated it: an sf-dictionary (`iss`, `sub`; or `scope`). */
  principal: 'Once-Principal',
} as const

/**
 * What a signature covers, besides its timestamp.
 *
 * @example
 * const input: SignatureInput = { method: 'POST', path: '/accounts/a1/deposits', requestId: 'r-1', domain: 'a1', sequence: 7, body: '{"amount":5}' }
 */
export interface SignatureInput {
  /** HTTP method; compared upper-cased. */
  method: string
  /** Path and query of the URL the origin receives, e.g. `/accounts/a1?x=1`; see {@link signedPath}. */
  path: string
  /** `Once-Request-Id`, or '' when the request has none. */
  requestId: string
  /** `Once-Domain`; '' or undefined when the request has none. */
  domain?: string | undefined
  /** `Once-Sequence` as sent on the wire; undefined when the request has none. */
  sequence?: number | string | undefined
  /** The request body exactly as sent; null, undefined or empty when there is none. */
  body?: Uint8Array | ArrayBuffer | string | null | undefined
}

/**
 * Why {@link verifyOnceSignature} refused a signature: the header is absent
 * (`missing`), unreadable (`malformed`), older or newer than the tolerance
 * (`stale`), or does not match the request (`mismatch`).
 *
 * @example
 * const why: SignatureFailure = 'stale'
 */
export type SignatureFailure = 'missing' | 'malformed' | 'stale' | 'mismatch'

/**
 * Result of {@link verifyOnceSignature}.
 *
 * @example
 * const v: SignatureVerdict = { ok: false, reason: 'mismatch' }
 */
export type SignatureVerdict = { ok: true } | { ok: false; reason: SignatureFailure }

/**
 * Options of {@link verifyOnceSignature}.
 *
 * @example
 * const opts: VerifyOptions = { toleranceSeconds: 60 }
 */
export interface VerifyOptions {
  /** Largest accepted clock difference, either way. Default 300 (5 minutes). */
  toleranceSeconds?: number
  /** The current time in unix seconds. Default: the clock. */
  nowSeconds?: number
}

const encoder = new TextEncoder()
const HEX64 = /^[0-9a-fA-F]{64}$/
const DIGITS = /^[0-9]{1,16}$/

/**
 * The part of a URL a signature covers: path plus query, as the origin sees it.
 *
 * @param url - an absolute URL
 * @returns e.g. `/accounts/a1?x=1`
 * @example
 * signedPath('https://eu.example.com/accounts/a1?x=1') // '/accounts/a1?x=1'
 */
export function signedPath(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url
  return u.pathname + u.search
}

/**
 * Signs a request for an origin: `t=<unix seconds>,v1=<hex HMAC-SHA256>`,
 * the HMAC keyed by `secret` over `t`, the method, the path with query, the
 * request id, the domain, the sequence (each '' when absent) and the hex
 * SHA-256 of the body, joined by `\n`. Send it as `Once-Signature`.
 *
 * @param secret - the secret shared with the origin
 * @param input - the parts of the request that are signed
 * @param nowSeconds - the timestamp to sign with; default the clock
 * @returns the header value
 * @example
 * const sig = await signOnceRequest(env.ORIGIN_SECRET, { method: 'POST', path: '/accounts/a1/deposits', requestId, body })
 * await fetch(url, { method: 'POST', body, headers: { [ONCE_HEADERS.requestId]: requestId, [ONCE_HEADERS.signature]: sig } })
 */
export async function signOnceRequest(secret: string, input: SignatureInput, nowSeconds?: number): Promise<string> {
  const t = Math.floor(nowSeconds ?? Date.now() / 1000)
  const key = await hmacKey(secret)
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(await signingString(t, input)))
  return `t=${t},v1=${toHex(new Uint8Array(mac))}`
}

/**
 * Checks a `Once-Signature` header against the request it came with. The
 * HMAC is compared by `crypto.subtle.verify` (constant time); the timestamp
 * must be within `toleranceSeconds` of now, either way. Several `v1=` entries
 * are allowed (the signer may hold more than one secret); one must match.
 *
 * @param secret - the secret shared with the edge
 * @param header - the `Once-Signature` value, or null/undefined when absent
 * @param input - the request as received
 * @param options - tolerance and clock
 * @returns `{ ok: true }`, or `{ ok: false, reason }`
 * @example
 * const verdict = await verifyOnceSignature(secret, req.headers.get('once-signature'), {
 *   method: req.method, path: signedPath(req.url), requestId: req.headers.get('once-request-id') ?? '', body,
 * })
 * if (!verdict.ok) return new Response(verdict.reason, { status: 401 })
 */
export async function verifyOnceSignature(
  secret: string,
  header: string | null | undefined,
  input: SignatureInput,
  options: VerifyOptions = {},
): Promise<SignatureVerdict> {
  if (header === null || header === undefined || header.trim() === '') return { ok: false, reason: 'missing' }
  const parsed = parseSignature(header)
  if (!parsed) return { ok: false, reason: 'malformed' }
  const key = await hmacKey(secret)
  const data = encoder.encode(await signingString(parsed.t, input))
  let match = false
  // Check every entry, so the time taken does not say which one matched.
  for (const mac of parsed.macs) {
    if (await crypto.subtle.verify('HMAC', key, mac, data)) match = true
  }
  if (!match) return { ok: false, reason: 'mismatch' }
  const now = Math.floor(options.nowSeconds ?? Date.now() / 1000)
  if (Math.abs(now - parsed.t) > (options.toleranceSeconds ?? 300)) return { ok: false, reason: 'stale' }
  return { ok: true }
}

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
 * Reads `Once-Noop`, an RFC 8941 Boolean: `?1` is true, `?0` false.
 *
 * @param value - the header value
 * @returns the flag, or undefined when invalid
 * @example
 * parseNoop('?1') // true
 * parseNoop('yes') // undefined
 */
export function parseNoop(value: string): boolean | undefined {
  if (value === '?1') return true
  if (value === '?0') return false
  return undefined
}

async function signingString(t: number, input: SignatureInput): Promise<string> {
  const body = input.body ?? ''
  const bytes = typeof body === 'string' ? encoder.encode(body) : new Uint8Array(body)
  const digest = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
  return [
    String(t),
    input.method.toUpperCase(),
    input.path,
    input.requestId,
    input.domain ?? '',
    input.sequence === undefined ? '' : String(input.sequence),
    digest,
  ].join('\n')
}

function parseSignature(header: string): { t: number; macs: Uint8Array<ArrayBuffer>[] } | undefined {
  let t: number | undefined
  const macs: Uint8Array<ArrayBuffer>[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) return undefined
    const name = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (name === 't') {
      if (t !== undefined || !DIGITS.test(value)) return undefined
      t = Number(value)
    } else if (name === 'v1') {
      if (!HEX64.test(value) || macs.length >= 8) return undefined
      macs.push(fromHex(value))
    }
    // Other schemes (v0, v2, …) are skipped, so a signer can add one before its origins know it.
  }
  if (t === undefined || !Number.isSafeInteger(t) || macs.length === 0) return undefined
  return { t, macs }
}

const keys = new Map<string, Promise<CryptoKey>>()

/** Imported keys are reused: importing costs more than the HMAC itself. A few secrets at most are live. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret)
  if (!key) {
    if (keys.size >= 16) keys.delete(keys.keys().next().value as string)
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    keys.set(secret, key)
  }
  return key
}

function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}
