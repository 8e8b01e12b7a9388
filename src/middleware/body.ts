import type { Context } from 'hono'
import { readRequestBody } from '../shared/request-body.js'
import { problemException } from './problem.js'

/**
 * Reads the request body (see {@link readRequestBody}: once, bounded, left
 * readable for the handler); a body over `maxBytes` is thrown as the 413
 * `body-too-large` problem, after the client has sent it.
 *
 * @param c - the request context
 * @param maxBytes - the largest body accepted, in bytes
 * @returns the body's bytes
 * @throws HTTPException carrying the 413 problem
 * @example
 * const body = await readBody(c, config.maxBodyBytes)
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array> {
  const body = await readRequestBody(c, maxBytes)
  if (body === 'too-large') throw problemException('body-too-large', { detail: `The request body is larger than ${maxBytes} bytes.`, instance: c.req.path })
  return body
}
