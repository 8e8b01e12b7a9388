import type { StoredReply } from './types.js'

/** Headers about the connection, not the answer (RFC 9110 §7.6.1), and Content-Length, recomputed from the body. */
const NOT_STORED: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
])

/**
 * Reads a response into a {@link StoredReply}: status, headers (all but
 * hop-by-hop ones and Content-Length; repeated Set-Cookie kept apart) and
 * the exact body bytes. The response is consumed: answer with the returned
 * `response`, which has the same status, headers and bytes.
 *
 * @param res - the handler's response
 * @returns the stored form and a fresh response
 * @example
 * const { reply, response } = await captureReply(c.res)
 */
export async function captureReply(res: Response): Promise<{ reply: StoredReply; response: Response }> {
  const body = new Uint8Array(await res.arrayBuffer())
  const headers: [string, string][] = []
  res.headers.forEach((value, name) => {
    if (name !== 'set-cookie' && !NOT_STORED.has(name)) headers.push([name, value])
  })
  for (const cookie of res.headers.getSetCookie()) headers.push(['set-cookie', cookie])
  const reply: StoredReply = { status: res.status, headers, body }
  return { reply, response: replayResponse(reply) }
}

/**
 * The response a repeat gets: the stored status, headers and body, byte for byte.
 *
 * @param reply - the stored answer
 * @returns a new response
 * @example
 * if (outcome.kind === 'replay') return replayResponse(outcome.reply)
 */
export function replayResponse(reply: StoredReply): Response {
  const headers = new Headers()
  for (const [name, value] of reply.headers) headers.append(name, value)
  const empty = reply.status === 204 || reply.status === 205 || reply.status === 304
  return new Response(empty ? null : new Uint8Array(reply.body), { status: reply.status, headers })
}
