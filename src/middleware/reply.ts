import type { StoredReply } from '../durable/types.js'

/**
 * Never replayed unless listed in `replayHeaders`: hop-by-hop headers (RFC 9110 §7.6.1) and cookies.
 *
 * @example
 * NEVER_REPLAYED.has('set-cookie') // true
 */
export const NEVER_REPLAYED: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  // recomputed from the stored body
  'content-length',
])

/**
 * Header marking an answer as a replay of the stored reply (IETF draft, Stripe).
 *
 * @example
 * res.headers.get(REPLAYED_HEADER) === 'true' // a duplicate's answer
 */
export const REPLAYED_HEADER = 'Idempotent-Replayed'

/**
 * Reads a response into a {@link StoredReply}: status, the headers that may
 * be replayed, and the exact body bytes. The response's body is consumed;
 * use the returned `response` (same status, headers and bytes) in its place.
 *
 * @param res - the handler's response
 * @param allow - lower-case header allow-list, or undefined for "all but {@link NEVER_REPLAYED}"
 * @param maxBytes - largest body that may be stored
 * @returns the stored form and a fresh response, or `tooLarge` with the size
 * @example
 * const { reply, response } = await captureReply(c.res, undefined, 8 << 20)
 */
export async function captureReply(
  res: Response,
  allow: ReadonlySet<string> | undefined,
  maxBytes: number,
): Promise<{ reply: StoredReply; response: Response; tooLarge: boolean }> {
  const body = new Uint8Array(await res.arrayBuffer())
  const response = new Response(nullBodyStatus(res.status) ? null : body, res)
  const headers: [string, string][] = []
  res.headers.forEach((value, name) => {
    if (allow ? allow.has(name) : !NEVER_REPLAYED.has(name)) headers.push([name, value])
  })
  // Headers.forEach joins repeated Set-Cookie; keep them apart when allowed.
  if (allow?.has('set-cookie')) {
    const i = headers.findIndex(([n]) => n === 'set-cookie')
    if (i >= 0) headers.splice(i, 1, ...res.headers.getSetCookie().map((v): [string, string] => ['set-cookie', v]))
  }
  return { reply: { status: res.status, headers, body }, response, tooLarge: body.byteLength > maxBytes }
}

/**
 * Rebuilds the response a duplicate gets: the stored status, headers and
 * body, byte for byte, plus `Idempotent-Replayed: true`.
 *
 * @param reply - what the stable area returned
 * @returns a new response
 * @example
 * return replayResponse(result.reply)
 */
export function replayResponse(reply: StoredReply): Response {
  const headers = new Headers()
  for (const [name, value] of reply.headers) headers.append(name, value)
  headers.set(REPLAYED_HEADER, 'true')
  return new Response(nullBodyStatus(reply.status) ? null : reply.body, { status: reply.status, headers })
}

/** Statuses whose responses may not carry a body. */
function nullBodyStatus(status: number): boolean {
  return status === 101 || status === 204 || status === 205 || status === 304
}
