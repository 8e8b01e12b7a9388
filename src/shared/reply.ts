import { HOP_BY_HOP } from './headers.js'
import { joinChunks, readHead } from './read-limited.js'

/** JSON value, as stored for a duplicate handler's arguments. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue }

/**
 * A reply as it is kept (by the stable area, a OnceObject or an origin's store): status, allow-listed headers and the
 * exact body bytes, or the arguments of a duplicate handler instead of a body.
 */
export interface StoredReply {
  status: number
  /** Header name/value pairs in the order the handler set them. */
  headers: [string, string][]
  /** Exact body bytes; empty when `args` is set. */
  body: Uint8Array
  /** Arguments for `onDuplicate`, stored instead of the body (seed 003's redundant-message handler). */
  args?: JsonValue
  /**
   * The body is already content-encoded (the handler set `Content-Encoding`
   * and sent the encoded bytes with `encodeBody: 'manual'`): replay the
   * bytes as they are instead of letting the runtime encode them again.
   */
  encoded?: boolean
}

/**
 * Never replayed unless listed in `replayHeaders`: hop-by-hop headers (RFC
 * 9110 §7.6.1), cookies, and the headers outer middleware sets for the
 * caller at hand rather than for the request (see {@link replayedByDefault}).
 *
 * @example
 * NEVER_REPLAYED.has('set-cookie') // true
 */
export const NEVER_REPLAYED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'set-cookie',
  // recomputed from the stored body
  'content-length',
  // the timing of the first answer, not of a replay (hono/timing)
  'server-timing',
  'timing-allow-origin',
  // the CORS answer for the first caller's Origin (hono/cors appends Origin)
  'vary',
  // the first request's id (hono/request-id and its usual names)
  'x-request-id',
  'request-id',
  'x-correlation-id',
])

/** Name prefixes of caller headers: CORS (hono/cors), rate limits (the IETF RateLimit fields and the x- forms). */
const CALLER_PREFIXES = ['access-control-', 'ratelimit', 'x-ratelimit-', 'x-rate-limit-']

/**
 * Whether a response header is stored for replay by default: not in
 * {@link NEVER_REPLAYED} and not a CORS or rate-limit header. These are
 * what outer middleware (`cors()`, `requestId()`, `timing()`, a rate
 * limiter) sets for the caller at hand; stored with the first caller's
 * reply, they would be replayed to another (another site's `Origin`, no
 * `Origin` at all). Such middleware sets its own on every answer, replays
 * included.
 *
 * @param name - lower-case header name
 * @returns whether it is stored
 * @example
 * replayedByDefault('access-control-allow-origin') // false
 * replayedByDefault('location') // true
 */
export function replayedByDefault(name: string): boolean {
  if (NEVER_REPLAYED.has(name)) return false
  for (const prefix of CALLER_PREFIXES) if (name.startsWith(prefix)) return false
  return true
}

/**
 * Which response headers a route stores: those its `replayHeaders`
 * allow-list names, or, without one, {@link replayedByDefault}; and
 * `Content-Encoding` always, with the body it describes (without it stored
 * bytes already encoded would replay unreadable).
 *
 * @param allow - the route's `replayHeaders`, lower-case
 * @returns the filter every stored reply is made with (the edge's, the object's, the alarm's)
 * @example
 * const replayed = replayFilter(new Set(['location']))
 * replayed('content-encoding') // true
 */
export function replayFilter(allow: ReadonlySet<string> | undefined): (name: string) => boolean {
  return allow ? (name) => name === 'content-encoding' || allow.has(name) : replayedByDefault
}

/**
 * Header marking an answer as a replay of the stored reply (IETF draft, Stripe).
 *
 * @example
 * res.headers.get(REPLAYED_HEADER) === 'true' // a duplicate's answer
 */
export const REPLAYED_HEADER = 'Idempotent-Replayed'

/** The bodies of responses built from bytes already in memory ({@link bufferedResponse}), by response. */
const BUFFERED = new WeakMap<Response, Uint8Array<ArrayBuffer>>()

/**
 * A response whose body is bytes already in memory (an origin's reply that
 * `proxy()` read whole): {@link captureReply} takes those bytes as they are,
 * without streaming the body again, and the response itself can still go out.
 * A null body (a 204, 205 or 304 answer) is known too: no bytes.
 *
 * @param body - the body, or null for none
 * @param init - status and headers
 * @returns the response
 * @example
 * return bufferedResponse(reply.body, { status: reply.status, headers })
 */
export function bufferedResponse(body: Uint8Array<ArrayBuffer> | null, init: ResponseInit): Response {
  const res = new Response(body, init)
  BUFFERED.set(res, body ?? new Uint8Array())
  return res
}

/**
 * Reads a response into a {@link StoredReply}: status, the headers that may
 * be replayed, and the exact body bytes. The response's body is consumed;
 * use the returned `response` (same status, headers and bytes) in its place:
 * the client at hand gets every header, only the stored form is filtered.
 *
 * @param res - the handler's response
 * @param replayed - which headers are stored ({@link replayFilter}): the
 *   route's allow-list, or all but hop-by-hop, cookies and the caller
 *   headers of outer middleware ({@link replayedByDefault})
 * @param maxBytes - largest body that may be stored
 * @returns the stored form and a fresh response, or `tooLarge` with the size
 * @example
 * const { reply, response } = await captureReply(c.res, replayedByDefault, 8 << 20)
 */
export async function captureReply(
  res: Response,
  replayed: (name: string) => boolean,
  maxBytes: number,
): Promise<{ reply: StoredReply; response: Response; tooLarge: boolean }> {
  const known = bufferedBody(res)
  const read = await readStoredReply(res, replayed, maxBytes)
  if ('rest' in read) {
    // Not stored, so not held: the client gets the whole body, streamed on from where the limit was passed.
    return { reply: read.head, response: new Response(read.rest, res), tooLarge: true }
  }
  const reply = read
  // Unread, `res` itself goes on; else a new one built on `res` as its init, so an already-encoded body
  // (encodeBody: 'manual') stays as it is.
  const response = known ? res : new Response(nullBodyStatus(res.status) ? null : (reply.body as Uint8Array<ArrayBuffer>), res)
  return { reply, response, tooLarge: reply.body.byteLength > maxBytes }
}

/**
 * The status and stored headers of `res`, its body not read but cancelled:
 * for a reply kept as `onDuplicate` args, whose bytes are never stored.
 *
 * @param res - the response (a copy the client does not get: its body is cancelled)
 * @param stored - which headers are kept
 * @returns the reply, with an empty body
 * @example
 * const head = replyHead(res.clone(), replayed)
 */
export function replyHead(res: Response, stored: (name: string) => boolean): StoredReply {
  void res.body?.cancel().catch(() => {})
  return { status: res.status, headers: headerPairs(res.headers, stored), body: new Uint8Array() }
}

/**
 * A reply over the limit a reader was given: its status and kept headers with an empty body (`head`), and the
 * whole body as a stream (`rest`: the bytes read so far, then the rest as it comes) for whoever still sends it;
 * cancel `rest` when nobody does.
 */
export interface OverLimit {
  head: StoredReply
  rest: ReadableStream<Uint8Array>
}

/**
 * Reads a response whole into a {@link StoredReply}: its status, the
 * headers `stored` keeps (repeated `Set-Cookie` kept apart), the exact
 * body bytes, and whether they are already in their `Content-Encoding`
 * (`encoded`: replayed as they are, never encoded twice). The one reader of
 * replies: `once()` ({@link captureReply}), an `OnceObject` and an origin's
 * receiver all store what it returns. The response's body is consumed
 * (unless it was made by {@link bufferedResponse}). Given `maxBytes`, it
 * reads no further than that and a chunk: a larger body comes back as
 * {@link OverLimit} (its head, and the whole body as a stream to send on).
 *
 * @param res - the response
 * @param stored - which headers are kept
 * @param maxBytes - the largest body read whole (default: no limit)
 * @returns the stored form, or the head and the stream of a body over `maxBytes`
 * @example
 * const reply = await readStoredReply(res, (name) => name !== 'content-length')
 */
export async function readStoredReply(res: Response, stored: (name: string) => boolean): Promise<StoredReply>
export async function readStoredReply(res: Response, stored: (name: string) => boolean, maxBytes: number): Promise<StoredReply | OverLimit>
export async function readStoredReply(res: Response, stored: (name: string) => boolean, maxBytes = Number.POSITIVE_INFINITY): Promise<StoredReply | OverLimit> {
  const headers = headerPairs(res.headers, stored)
  let body = bufferedBody(res)
  if (!body && res.body && Number.isFinite(maxBytes)) {
    // Read no further than the limit: a reply that will not be kept is never held whole (it may be larger than memory).
    const reader = res.body.getReader()
    const head = await readHead(reader, maxBytes)
    if (head.over) return { head: { status: res.status, headers, body: new Uint8Array() }, rest: streamOn(head.chunks, reader) }
    body = joinChunks(head.chunks, head.size)
  }
  body ??= new Uint8Array(await res.arrayBuffer())
  const reply: StoredReply = { status: res.status, headers, body }
  if (await alreadyEncoded(res.headers.get('content-encoding'), body)) reply.encoded = true
  return reply
}

/** A stream of `chunks`, then of what `reader` still gives; cancelling it cancels the reader. */
function streamOn(chunks: readonly Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk)
    },
    async pull(controller) {
      const { done, value } = await reader.read()
      if (done) controller.close()
      else controller.enqueue(value)
    },
    cancel: (reason) => reader.cancel(reason),
  })
}

/**
 * Whether `res`, as {@link captureReply} would store it with `replayed`, is
 * `reply` byte for byte: the same status, stored headers and body. Only a
 * response whose bytes were known when it was made ({@link bufferedBody})
 * can tell; without them the answer is false.
 *
 * @param res - a response's status, headers and bytes, as taken when it was made
 * @param reply - a stored reply
 * @param replayed - which headers are stored
 * @returns true when storing `res` would store `reply`
 * @example
 * if (storesAs(proxied, reply, replayedByDefault)) { … } // the route did not change proxy()'s answer
 */
export function storesAs(res: { status: number; headers: Headers; body: Uint8Array | undefined }, reply: StoredReply, replayed: (name: string) => boolean): boolean {
  const body = res.body
  if (!body || res.status !== reply.status || body.byteLength !== reply.body.byteLength) return false
  if (JSON.stringify(headerPairs(res.headers, replayed)) !== JSON.stringify(reply.headers)) return false
  if (body === reply.body) return true
  for (let i = 0; i < body.byteLength; i++) if (body[i] !== reply.body[i]) return false
  return true
}

/** The bytes of a response made by {@link bufferedResponse}, while unread; else undefined. */
export function bufferedBody(res: Response): Uint8Array<ArrayBuffer> | undefined {
  return res.bodyUsed ? undefined : BUFFERED.get(res)
}

/**
 * The headers `stored` keeps, as name/value pairs in order. `Set-Cookie`
 * may not be joined, so it comes as one pair per cookie.
 *
 * @param all - the response's headers
 * @param stored - which names are kept (lower-case names)
 * @returns the pairs
 * @example
 * headerPairs(res.headers, replayedByDefault) // [['content-type', 'application/json'], …]
 */
function headerPairs(all: Headers, stored: (name: string) => boolean): [string, string][] {
  const headers: [string, string][] = []
  all.forEach((value, name) => {
    if (name !== 'set-cookie' && stored(name)) headers.push([name, value])
  })
  if (stored('set-cookie')) for (const cookie of all.getSetCookie()) headers.push(['set-cookie', cookie])
  return headers
}

/**
 * A stored reply whose `encoded` flag a store did not keep (the origin's
 * SQL and D1 tables have no column for it), told again from its bytes as
 * {@link readStoredReply} told it: replayed with its `Content-Encoding`, an
 * already-encoded body must go out as it is, never encoded a second time.
 *
 * @param reply - the reply as a store returned it
 * @returns the same reply, with `encoded` set when its body is already encoded
 * @example
 * return replayResponse(await restoreEncoded(outcome.reply), false)
 */
export async function restoreEncoded(reply: StoredReply): Promise<StoredReply> {
  if (reply.encoded !== undefined) return reply
  const encoding = reply.headers.find(([name]) => name.toLowerCase() === 'content-encoding')?.[1] ?? null
  return (await alreadyEncoded(encoding, reply.body as Uint8Array<ArrayBuffer>)) ? { ...reply, encoded: true } : reply
}

/**
 * Whether `body` is already in its `Content-Encoding` (the handler encoded
 * it and sent it with `encodeBody: 'manual'`) rather than plain bytes the
 * runtime encodes on the way out. Workers do not expose the flag, so gzip
 * and deflate are told by decoding. `br`, which Workers encode by themselves
 * (`brotli_content_encoding`, on since 2024-04-29) but cannot decode here,
 * is taken as the runtime's to encode there (a handler's own brotli bytes
 * sent with `encodeBody: 'manual'` cannot be told apart, and would be encoded
 * twice on a replay: docs/once.md), and as already encoded elsewhere (Node
 * sends bytes as they are). Other codings, which no runtime applies, are
 * already encoded.
 */
async function alreadyEncoded(encoding: string | null, body: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const coding = encoding?.trim().toLowerCase()
  if (!coding || coding === 'identity' || body.byteLength === 0) return false
  if (coding === 'br') return !ON_WORKERS
  const format = coding === 'gzip' || coding === 'x-gzip' ? 'gzip' : coding === 'deflate' ? 'deflate' : undefined
  if (!format) return true
  // Decoded as a stream and let go, up to DECODE_PROBE_BYTES of output: a small stored body may inflate a
  // thousandfold (a gzip bomb), and only whether it decodes matters here.
  const reader = new Blob([body]).stream().pipeThrough(new DecompressionStream(format)).getReader()
  try {
    for (let seen = 0; seen < DECODE_PROBE_BYTES; ) {
      const { done, value } = await reader.read()
      if (done) return true
      seen += value.byteLength
    }
    return true
  } catch {
    return false
  } finally {
    reader.cancel().catch(() => {})
  }
}

/** Whether this code runs on Workers (workerd), whose runtime encodes a body by its `Content-Encoding` on the way out. */
const ON_WORKERS = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers'

/** How much of a stored body's decoded form {@link alreadyEncoded} reads to know that it decodes. */
const DECODE_PROBE_BYTES = 1024 * 1024

/**
 * Rebuilds the response a duplicate gets: the stored status, headers and
 * body, byte for byte, plus `Idempotent-Replayed: true` unless `marked` is
 * false (an origin's receiver, and the first answer of a request, carry no mark).
 *
 * @param reply - what the stable area returned
 * @param marked - add `Idempotent-Replayed: true` (default)
 * @returns a new response
 * @example
 * return replayResponse(result.reply)
 */
export function replayResponse(reply: StoredReply, marked = true): Response {
  const headers = new Headers()
  for (const [name, value] of reply.headers) headers.append(name, value)
  if (marked) headers.set(REPLAYED_HEADER, 'true')
  const init: ResponseInit & { encodeBody?: 'manual' } = { status: reply.status, headers }
  // The stored bytes are what went out: an encoded body is sent as it is, never encoded twice.
  if (reply.encoded) init.encodeBody = 'manual'
  return new Response(nullBodyStatus(reply.status) ? null : (reply.body as Uint8Array<ArrayBuffer>), init)
}

/**
 * Statuses whose responses may not carry a body.
 *
 * @example
 * new Response(nullBodyStatus(status) ? null : body, { status })
 */
export function nullBodyStatus(status: number): boolean {
  return status === 101 || status === 204 || status === 205 || status === 304
}
