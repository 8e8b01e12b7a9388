import { contentDigest } from './content-digest.js'
import { HOP_BY_HOP } from './headers.js'
import { CREDENTIALS, isCredentialHeader } from './credentials.js'
import { MIN_SECRET_LENGTH, signRequest, type SigningKey } from './signature.js'
import { readUpTo } from './read-limited.js'
import { ONCE_HEADERS, SAFE_METHODS as SAFE } from './wire.js'
import type { ForwardRequest, Origin, OriginReply, SecretOption, WireIdentity } from './types.js'

/**
 * Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), ones the
 * runtime sets, and the wire contract's own, which the edge sets itself (a
 * client cannot inject a request id, a digest or a signature).
 */
const NOT_FORWARDED = new Set([
  ...HOP_BY_HOP,
  'host',
  'content-length',
  'accept-encoding',
  'idempotency-key',
  'content-digest',
  'signature',
  'signature-input',
])


/**
 * Response headers dropped from an origin's answer: hop-by-hop, the length
 * (of bytes as they came), and `Content-Encoding`, which {@link decodeAnswer}
 * puts back when the bytes are still in it.
 */
const NOT_RETURNED = new Set([
  ...HOP_BY_HOP,
  'content-encoding',
  'content-length',
])

/** The `Content-Encoding` values `fetch` decodes by itself on Workers: `gzip` or `br`, exactly. Any other value (`GZIP` too) arrives as it was sent. */
const RUNTIME_DECODED = new Set(['gzip', 'br'])

/**
 * Whether a request header is never forwarded, whatever `forwardHeaders`
 * lists: hop-by-hop, `Host`, `Content-Length`, `Accept-Encoding`, `Cf-*`,
 * and the wire contract's own (`Idempotency-Key`, `Once-*`,
 * `Content-Digest`, `Signature*`), which the edge sets itself.
 * `proxy()` refuses such a name in `forwardHeaders` at start-up.
 *
 * @param name - a header name, any case
 * @returns true when no request ever carries it on to an origin
 * @example
 * neverForwarded('Host') // true
 * neverForwarded('x-tenant') // false
 */
export function neverForwarded(name: string): boolean {
  const lower = name.toLowerCase()
  return NOT_FORWARDED.has(lower) || lower.startsWith('once-') || lower.startsWith('cf-')
}

/**
 * The headers of an incoming request that travel on to the origins. Never
 * hop-by-hop ones, `Host`, `Once-*`, `Cf-*`, the key, a digest or a
 * signature (the edge sets those). Without an allow-list, every other
 * header, except that a logical request (not GET, HEAD, OPTIONS) drops the
 * client's credentials (`Authorization`, `Cookie`; `Proxy-Authorization` is hop-by-hop):
 * it is stored and resent later, and the origin reads the caller from
 * `Once-Principal`; a request kept in a domain's log (`logged`, for days
 * maybe) drops every credential header (`isCredentialHeader`: `X-Api-Key`
 * too). With an allow-list, only `Content-Type` and the listed headers
 * (credentials too, when listed; an ordered route refuses that at its admit).
 *
 * @param headers - the client's request headers
 * @param method - the request's method
 * @param allow - the route's `forwardHeaders`, lower-case, when it has one
 * @param logged - the request is kept in an ordering domain's log
 * @returns name/value pairs
 * @example
 * forwardHeaders(c.req.raw.headers, 'POST') // [['content-type', 'application/json'], …], no authorization
 */
export function forwardHeaders(headers: Headers, method: string, allow?: readonly string[], logged = false): [string, string][] {
  const out: [string, string][] = []
  const listed = allow && new Set(allow.map((name) => name.toLowerCase()))
  const logical = !SAFE.has(method.toUpperCase())
  const credential = logged ? isCredentialHeader : (name: string) => CREDENTIALS.has(name)
  headers.forEach((value, name) => {
    if (neverForwarded(name)) return
    if (listed ? name !== 'content-type' && !listed.has(name) : logical && credential(name)) return
    out.push([name, value])
  })
  return out
}

/**
 * The URL of `path` at an origin whose base is `base`: the base's own path
 * is kept as a prefix (`https://eu.example.com/api` + `/accounts/a` →
 * `https://eu.example.com/api/accounts/a`).
 *
 * @param base - the origin's `url`
 * @param path - path and query of the incoming request
 * @returns the absolute URL
 * @example
 * originUrl('https://eu.example.com', '/accounts/a?x=1') // 'https://eu.example.com/accounts/a?x=1'
 */
export function originUrl(base: string, path: string): string {
  const u = new URL(base)
  const prefix = u.pathname.replace(/\/+$/, '')
  return `${u.origin}${prefix}${path.startsWith('/') ? path : `/${path}`}`
}

/**
 * The key a send signs with: resolved, or named but not set in the
 * environment (`missing` names the env var). A send with a missing key
 * fails without sending: a request never goes out unsigned when a secret is
 * configured (DESIGN §6).
 *
 * @example
 * const s: SendSecret = { keyid: 'ONCE_SIGNING_SECRET', missing: 'ONCE_SIGNING_SECRET' }
 */
export type SendSecret = SigningKey | { keyid: string; missing: string; why: string }


/**
 * Resolves a named signing secret from the environment, at send time (it is
 * never stored): `{ keyid, secret }` when `env[name]` is a string of at
 * least {@link MIN_SECRET_LENGTH} characters, `{ keyid, missing, why }` when
 * it is not (unset, or too short), undefined when no secret is configured.
 *
 * @param secret - `proxy()`'s `secret` (or a relay plan's)
 * @param env - the Worker's (or the object's) env
 * @returns the key to sign with, the missing one, or undefined
 * @example
 * resolveSecret({ env: 'ONCE_SIGNING_SECRET' }, c.env) // { keyid: 'ONCE_SIGNING_SECRET', secret: '…' }
 */
export function resolveSecret(secret: SecretOption | undefined, env: unknown): SendSecret | undefined {
  if (secret === undefined) return undefined
  // A plan stored before secrets were named may hold the value itself: it is not used (name the secret with { env }).
  if (typeof secret !== 'object' || secret === null || typeof secret.env !== 'string') {
    return { keyid: 'unnamed', missing: '(a literal secret from an older relay plan)', why: 'is not a named secret' }
  }
  const keyid = secret.keyid ?? secret.env
  const value = (env as Record<string, unknown> | undefined)?.[secret.env]
  if (typeof value !== 'string' || value === '') return { keyid, missing: secret.env, why: 'is not set' }
  if (value.length < MIN_SECRET_LENGTH) return { keyid, missing: secret.env, why: `is shorter than ${MIN_SECRET_LENGTH} characters (give a random one, e.g. openssl rand -base64 32)` }
  return { keyid, secret: value }
}

/** What one attempt needs. */
export interface SendInput {
  origin: Origin
  request: ForwardRequest
  wire: WireIdentity
  /** `Once-Attempt` of this send. */
  attempt: number
  /** The signing key (see {@link resolveSecret}), when origins verify signatures. */
  secret?: SendSecret | undefined
  timeoutMs: number
  maxResponseBytes: number
  /** Aborts the attempt from outside: the deadline passed, or another hedge won. */
  signal: AbortSignal
}

/** How one attempt ended. */
export type SendResult =
  | { ok: true; reply: OriginReply; ms: number }
  | {
      ok: false
      reason: 'timeout' | 'network' | 'aborted' | 'too-large'
      ms: number
      error?: unknown
      /** `too-large`: the status and headers of the answer whose body was over the limit (whether it was applied). */
      head?: { status: number; headers: [string, string][] }
    }

/**
 * Sends one attempt to one origin and reads its answer whole, within
 * `timeoutMs` and `maxResponseBytes`. Redirects are not followed (a 3xx is
 * an answer). Never throws: a hang, a reset connection, a body cut short or
 * over the limit are results.
 *
 * @param input - origin, request, identity and limits
 * @returns the origin's reply, or why there is none
 * @example
 * const r = await sendAttempt({ origin, request, wire: { requestId }, attempt: 1, timeoutMs: 1500, maxResponseBytes: 1 << 20, signal })
 */
export async function sendAttempt(input: SendInput): Promise<SendResult> {
  const { origin, request, wire, timeoutMs, maxResponseBytes } = input
  const started = Date.now()
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort(new DOMException('origin attempt timed out', 'TimeoutError'))
  }, timeoutMs)
  const onAbort = () => controller.abort(input.signal.reason)
  if (input.signal.aborted) onAbort()
  else input.signal.addEventListener('abort', onAbort, { once: true })
  const failure = (reason: 'timeout' | 'network' | 'aborted' | 'too-large', error?: unknown): Extract<SendResult, { ok: false }> => ({
    ok: false,
    reason: timedOut ? 'timeout' : input.signal.aborted ? 'aborted' : reason,
    ms: Date.now() - started,
    error,
  })
  const secret = input.secret
  if (secret && 'missing' in secret) {
    const error = new Error(`hono-once: not sent: the signing secret env.${secret.missing} ${secret.why}, and a request is never sent unsigned`)
    console.error(`${error.message} (request ${wire.requestId} to ${origin.name})`)
    clearTimeout(timer)
    input.signal.removeEventListener('abort', onAbort)
    return { ok: false, reason: 'network', ms: 0, error }
  }
  try {
    const req = await buildRequest(input, secret, controller.signal)
    // Raced against the abort: a fetcher (or a body) that ignores its signal cannot hold the attempt past its timeout.
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason)
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
    })
    aborted.catch(() => {})
    const res = await Promise.race(['fetcher' in origin ? origin.fetcher.fetch(req) : fetch(req), aborted])
    const headers: [string, string][] = []
    res.headers.forEach((value, name) => {
      if (!NOT_RETURNED.has(name)) headers.push([name, value])
    })
    const read = await Promise.race([readLimited(res, maxResponseBytes, controller.signal), aborted])
    const body = read === 'too-large' ? read : await Promise.race([decodeAnswer(res.headers.get('content-encoding'), read, headers, maxResponseBytes, controller.signal), aborted])
    if (body === 'too-large') {
      controller.abort()
      return { ...failure('too-large'), head: { status: res.status, headers } }
    }
    return { ok: true, reply: { status: res.status, headers, body }, ms: Date.now() - started }
  } catch (err) {
    return failure('network', err)
  } finally {
    clearTimeout(timer)
    input.signal.removeEventListener('abort', onAbort)
  }
}

async function buildRequest(input: SendInput, key: SigningKey | undefined, signal: AbortSignal): Promise<Request> {
  const { origin, request, wire, attempt } = input
  // The path the edge routed, for a service binding too: `new URL(path, base)` would read `//host/admin` as a host and a path.
  const url = originUrl('url' in origin ? origin.url : 'https://origin.invalid', request.path)
  const headers = new Headers(request.headers)
  if (wire.key !== undefined) headers.set(ONCE_HEADERS.idempotencyKey, `"${wire.key.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
  headers.set(ONCE_HEADERS.requestId, wire.requestId)
  headers.set(ONCE_HEADERS.attempt, String(attempt))
  if (wire.domain !== undefined) headers.set(ONCE_HEADERS.domain, wire.domain)
  if (wire.sequence !== undefined) headers.set(ONCE_HEADERS.sequence, String(wire.sequence))
  if (wire.noop) headers.set(ONCE_HEADERS.noop, '?1')
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
  // On every forwarded request, the empty body's too: the signature covers it, so the receiver checks the body against it.
  headers.set(ONCE_HEADERS.contentDigest, await contentDigest(hasBody ? request.body : EMPTY))
  if (key) {
    const signed = signRequest(key, { method: request.method, url, headers })
    headers.set(ONCE_HEADERS.signatureInput, signed.signatureInput)
    headers.set(ONCE_HEADERS.signature, signed.signature)
  }
  return new Request(url, { method: request.method, headers, body: hasBody ? (request.body as Uint8Array<ArrayBuffer>) : null, redirect: 'manual', signal })
}

const EMPTY = new Uint8Array()

/**
 * An answer's body as it means, whatever `Content-Encoding` it came in, so a
 * stored reply is never encoded bytes without the header that says so.
 * `fetch` decodes a lone `gzip` or `br` itself (in lower case); the codings it
 * leaves (`deflate`, `x-gzip`, `GZIP`, a list such as `deflate, gzip`) are decoded here, the last applied
 * first, `deflate` as zlib or, when the bytes are not zlib, raw deflate (some
 * servers send that). A list holding a coding no runtime here decodes
 * (`compress`, `zstd`, a private one) is kept as it came: the bytes with their
 * `Content-Encoding` put back in `headers`. Bytes that do not decode throw, as a
 * body cut short does: the attempt failed.
 *
 * @param encoding - the answer's `Content-Encoding`, or null
 * @param bytes - the body as read
 * @param headers - the answer's headers as returned; `Content-Encoding` is appended when kept
 * @param max - the largest decoded body accepted
 * @param signal - stops the decoding
 * @returns the body, or 'too-large' when decoded it passes `max`
 */
async function decodeAnswer(encoding: string | null, bytes: Uint8Array, headers: [string, string][], max: number, signal: AbortSignal): Promise<Uint8Array | 'too-large'> {
  const codings = (encoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  // The runtime's test is exact: `GZIP` or `x-gzip` arrive as they were sent.
  if (codings.length === 0 || RUNTIME_DECODED.has(encoding!)) return bytes
  if (!codings.every((c) => c === 'gzip' || c === 'x-gzip' || c === 'deflate')) {
    headers.push(['content-encoding', encoding!])
    return bytes
  }
  // No bytes (a 204, a HEAD's answer) decode to none, whatever the header says of the representation.
  if (bytes.byteLength === 0) return bytes
  let body = bytes
  for (const coding of codings.reverse()) {
    const format = coding === 'deflate' ? (isZlib(body) ? 'deflate' : 'deflate-raw') : 'gzip'
    const reader = new Blob([body as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream(format)).getReader()
    const decoded = await readUpTo(reader, max, signal)
    if (!decoded) {
      await reader.cancel().catch(() => {})
      return 'too-large'
    }
    body = decoded
  }
  return body
}

/** Whether bytes open with a zlib header (RFC 1950: method 8, and the check bits), as `deflate` means; else they are raw deflate. */
function isZlib(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 2 && (bytes[0]! & 0x0f) === 8 && (bytes[0]! >> 4) <= 7 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0
}

/** Reads a response body up to `max` bytes; past it, stops and says so. */
async function readLimited(res: Response, max: number, signal: AbortSignal): Promise<Uint8Array | 'too-large'> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN)
  if (declared > max) {
    await res.body?.cancel().catch(() => {})
    return 'too-large'
  }
  if (!res.body) return new Uint8Array()
  // A declared length within the limit: the runtime reads it natively (and fails on a body that does not match).
  // Not when the body is encoded: the runtime decodes it, and the length declared is the encoded one (a 20 KB gzip
  // answer is 20 MB read), so such a body is counted as it is read, like one of unknown length.
  const encoded = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase() !== 'identity'
  if (declared >= 0 && !encoded) return new Uint8Array(await res.arrayBuffer())
  const reader = res.body.getReader()
  const body = await readUpTo(reader, max, signal)
  if (body) return body
  await reader.cancel().catch(() => {})
  return 'too-large'
}
