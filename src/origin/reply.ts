import { readStoredReply, replayResponse as storedResponse, type StoredReply } from '../shared/reply.js'

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
  const reply = await readStoredReply(res, (name) => !NOT_STORED.has(name))
  return { reply, response: replayResponse(reply) }
}

/**
 * The response a repeat gets: the stored status, headers and body, byte for
 * byte (no replay mark: the edge adds its own).
 *
 * @param reply - the stored answer
 * @returns a new response
 * @example
 * if (outcome.kind === 'replay') return replayResponse(outcome.reply)
 */
export function replayResponse(reply: StoredReply): Response {
  // A copy: a store may hand out a view of memory it reuses.
  return storedResponse({ status: reply.status, headers: reply.headers, body: new Uint8Array(reply.body) }, false)
}
