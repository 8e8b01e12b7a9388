import type { Context } from 'hono'
import { readUpTo } from './read-limited.js'

/**
 * How much of a refused body is read and thrown away before the 413, and
 * for how long: see {@link readRequestBody}. Past either bound the rest is
 * cancelled and the 413 sent anyway (a client still sending that much is
 * not waited for).
 */
const DRAIN_BYTES = 64 * 1024 * 1024
const DRAIN_MS = 5_000

/**
 * Reads the request body once, at most `maxBytes` of it, and leaves it
 * readable for the handler (`c.req.json()`, `c.req.raw`). A body over the
 * limit is `'too-large'` (for the caller's 413 `body-too-large`), whether
 * its size was declared (`Content-Length`) or only found out while reading
 * (chunked). `once()`, `onceObject()` and `proxy()`/`dispatch()` (a body
 * once() did not read) read a request body through it; `onceReceiver()`, at
 * the origin, has its own (it cancels the rest instead of draining it).
 *
 * The 413 waits until the client has sent its body, which is read and
 * thrown away (bounded: 64 MiB, 5 s). Answering while the client is still
 * sending races the client: the runtime then cuts the request stream, and
 * whoever stands between (wrangler dev's proxy, a load balancer) may turn
 * the cut into a 500 or a reset instead of the 413, depending on timing and
 * chunk sizes. The rule: no answer goes out before the request was read to
 * its end, or given up on for good.
 *
 * A body that middleware before this one already read through Hono
 * (a `validator('json')`, `c.req.text()`, `c.req.parseBody()`) is taken from
 * Hono's body cache, whatever its transfer: the stream is spent by then.
 * JSON read that way comes back re-serialised (`JSON.stringify` of what was
 * parsed), so its fingerprint is of that text; a form kept only as
 * `FormData` (`c.req.formData()`, or `parseBody()` on older hono, e.g. 4.6) is
 * encoded again by {@link formBody}.
 *
 * @param c - the request context
 * @param maxBytes - the largest body accepted, in bytes
 * @returns the body's bytes, or `'too-large'` once the client has sent the rest (or it was given up on)
 * @throws what reading the stream throws (a client that went away mid-body)
 * @example
 * const body = await readRequestBody(c, 1024 * 1024)
 * if (body === 'too-large') return problem('body-too-large', { detail: 'Over 1 MiB.', instance: c.req.path })
 */
export async function readRequestBody(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer> | 'too-large'> {
  const raw = c.req.raw
  const cached = Object.keys(c.req.bodyCache)[0]
  if (cached !== undefined) {
    // Read before us (and so to its end): Hono answers any form of it from what it cached, but a form it kept
    // only as FormData it sends as multipart with a new random boundary each time: made again here, stably.
    const form = cached === 'formData' ? await formBody(await (c.req.bodyCache.formData as Promise<FormData> | FormData), raw) : undefined
    const body = form?.body ?? new Uint8Array(await c.req.arrayBuffer())
    if (body.byteLength > maxBytes) return 'too-large'
    return storeBody(c, body, false, form?.contentType)
  }
  const stream = raw.body
  if (!stream) return new Uint8Array(0)
  const length = raw.headers.get('content-length')
  if (length !== null && !raw.headers.has('transfer-encoding')) {
    // The runtime holds a declared length to its word, so a body within it is read as it is.
    if (Number(length) <= maxBytes) return storeBody(c, new Uint8Array(await c.req.arrayBuffer()), true)
    await drain(stream.getReader())
    return 'too-large'
  }
  const reader = stream.getReader()
  const body = await readUpTo(reader, maxBytes)
  if (!body) {
    await drain(reader)
    return 'too-large'
  }
  return storeBody(c, body)
}

const decoder = new TextDecoder()

/**
 * Hands `body` to the handler: Hono's body cache (`c.req.json()` and
 * friends) and a fresh `c.req.raw` for code that forwards it. The text form
 * is decoded from the bytes when first asked for (as `Response.text()`
 * decodes: UTF-8, BOM dropped), so `c.req.json()` and `c.req.text()` do not
 * read the body through a new `Response` stream; so is its `FormData`, with
 * the request's `Content-Type`. `contentType` replaces
 * the request's when the bytes were encoded again (a new multipart boundary).
 */
function storeBody(c: Context, body: Uint8Array<ArrayBuffer>, cached = false, contentType?: string): Uint8Array<ArrayBuffer> {
  let headers: Headers | undefined
  if (contentType !== undefined) {
    headers = new Headers(c.req.raw.headers)
    headers.set('content-type', contentType)
  }
  // A body taken from Hono's cache may have been encoded again (JSON, a form): its length goes with it.
  const declared = c.req.raw.headers.get('content-length')
  if (declared !== null && Number(declared) !== body.byteLength) {
    headers ??= new Headers(c.req.raw.headers)
    headers.set('content-length', String(body.byteLength))
  }
  const sent = c.req.raw
  // A GET or HEAD carries no body (no Request with one can be made): it stays as it is.
  if (sent.method !== 'GET' && sent.method !== 'HEAD') {
    if (headers) c.req.raw = new Request(sent, { body, headers })
    else lazyRaw(c, sent, body)
  }
  const cache = c.req.bodyCache as Record<string, unknown>
  if (!cached) cache.arrayBuffer = Promise.resolve(body.buffer as ArrayBuffer)
  lazyEntry(cache, 'text', () => decoder.decode(body))
  // With the request's Content-Type: hono 4.6 makes FormData of the cached bytes without it, which fails. Read
  // when asked for, not on every request, with the type the request has then (a handler may have set it: a
  // beacon's text/plain form).
  lazyEntry(cache, 'formData', () => {
    const type = heldRequest(c).headers.get('content-type')
    return new Response(body, type === null ? {} : { headers: { 'content-type': type } }).formData()
  })
  return body
}

/**
 * The request as it came, for its method, URL and headers, without making
 * the fresh `c.req.raw` that {@link readRequestBody} leaves for the handler:
 * that one is made when first asked for (a replay never runs the handler, so
 * it never pays for a `Request` copy). Its body may be spent; its headers
 * are the fresh one's.
 *
 * @param c - the request context
 * @returns the request whose method, URL and headers `c.req.raw` has
 * @example
 * const authorization = heldRequest(c).headers.get('authorization')
 */
export function heldRequest(c: Context): Request {
  return HELD.get(c.req) ?? c.req.raw
}

/** The request as sent, by the `c.req` whose fresh `raw` is not made yet (see {@link heldRequest}). */
const HELD = new WeakMap<object, Request>()

/**
 * Makes `c.req.raw` the request with `body` again when first read, for code
 * that forwards it or reads it directly: until then {@link heldRequest}
 * answers for its method, URL and headers (the same). Hono's `raw` is a
 * plain field; a value assigned to it replaces this.
 */
function lazyRaw(c: Context, sent: Request, body: Uint8Array<ArrayBuffer>): void {
  const req = c.req
  const settle = (raw: Request): Request => {
    HELD.delete(req)
    Object.defineProperty(req, 'raw', { value: raw, writable: true, enumerable: true, configurable: true })
    return raw
  }
  HELD.set(req, sent)
  Object.defineProperty(req, 'raw', {
    configurable: true,
    enumerable: true,
    get: () => settle(new Request(sent, { body })),
    set: settle,
  })
}

/**
 * Puts `key` in Hono's body cache as a promise made when first asked for.
 * Not enumerable, so Hono still converts other forms from the first
 * enumerable entry (the bytes); a value Hono stores under `key` replaces
 * it, and one it already holds is kept.
 */
function lazyEntry(cache: Record<string, unknown>, key: string, make: () => unknown): void {
  if (key in cache) return
  let made: Promise<unknown> | undefined
  Object.defineProperty(cache, key, {
    configurable: true,
    enumerable: false,
    get: () => (made ??= Promise.resolve().then(make)),
    set: (value: unknown) => Object.defineProperty(cache, key, { value, writable: true, enumerable: true, configurable: true }),
  })
}

/**
 * The bytes of a form Hono kept only as `FormData`, the same for the same
 * form (not the bytes sent, which are gone): an url-encoded form as
 * `URLSearchParams` serialises it; a multipart one as `Response` encodes it,
 * with the `Content-Type` of its new boundary (which the fingerprint leaves
 * out).
 */
async function formBody(form: FormData, raw: Request): Promise<{ body: Uint8Array<ArrayBuffer>; contentType?: string }> {
  const media = raw.headers.get('content-type')?.split(';', 1)[0]!.trim().toLowerCase()
  if (media === 'application/x-www-form-urlencoded') {
    const pairs = new URLSearchParams()
    form.forEach((value, name) => pairs.append(name, typeof value === 'string' ? value : value.name))
    return { body: new Uint8Array(new TextEncoder().encode(pairs.toString())) }
  }
  const encoded = new Response(form)
  const contentType = encoded.headers.get('content-type')
  const body = new Uint8Array(await encoded.arrayBuffer())
  return contentType === null ? { body } : { body, contentType }
}

/** Reads what the client still sends and throws it away, within the bounds; then gives the rest up. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let drained = 0
  const deadline = Date.now() + DRAIN_MS
  try {
    while (drained <= DRAIN_BYTES) {
      const left = deadline - Date.now()
      if (left <= 0) break
      let stop = (): void => {}
      const timeout = new Promise<undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), left)
        stop = () => clearTimeout(timer)
      })
      const read = await Promise.race([reader.read(), timeout])
      stop()
      if (read === undefined || read.done) return
      drained += read.value.byteLength
    }
  } catch {
    return // the client went away: nobody is left to answer
  }
  await reader.cancel().catch(() => {})
}
