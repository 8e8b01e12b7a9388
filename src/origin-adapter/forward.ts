import { forwardHeaders } from './send.js'
import type { ForwardRequest } from './types.js'

/**
 * Largest request body a relay stores (a SQLite row holds at most 2 MB);
 * a larger relayed request is refused with 413 before anything is sent.
 *
 * @example
 * if (body.byteLength > MAX_RELAY_BODY_BYTES) return problem('body-too-large', …)
 */
export const MAX_RELAY_BODY_BYTES = 1024 * 1024

/**
 * The request as it travels to origins (and is stored for resends): method,
 * path with query, forwardable headers and the exact body.
 *
 * @param req - the incoming request
 * @param body - its body, already read
 * @returns the forward request
 * @example
 * const request = forwardRequest(c.req.raw, new Uint8Array(await c.req.arrayBuffer()))
 */
export function forwardRequest(req: Request, body: Uint8Array): ForwardRequest {
  const url = new URL(req.url)
  return { method: req.method.toUpperCase(), path: url.pathname + url.search, headers: forwardHeaders(req.headers), body }
}
