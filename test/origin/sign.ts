import { contentDigest, signRequest, type SigningKey } from '../../src/origin/index.js'

/**
 * Headers of a request signed as the edge signs it (RFC 9421, label `once`,
 * with `Content-Digest`), for tests that play the edge by hand.
 *
 * @param key - keyid and secret
 * @param url - the absolute URL the request goes to
 * @param init - method (default POST), headers and body as sent
 * @param options - `nowSeconds` to sign at another time; `bodyForDigest` to digest other bytes than are sent
 * @returns the headers to send, the given ones included
 * @example
 * const headers = await signedHeaders({ keyid: 'ONCE_SIGNING_SECRET', secret }, `${url}/effects`, { headers: { 'once-request-id': 'r-1' }, body: '{}' })
 */
export async function signedHeaders(
  key: SigningKey,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  options: { nowSeconds?: number; bodyForDigest?: string } = {},
): Promise<Record<string, string>> {
  const method = init.method ?? 'POST'
  const headers = new Headers(init.headers)
  headers.set('content-digest', await contentDigest(new TextEncoder().encode(options.bodyForDigest ?? init.body ?? '')))
  const signed = signRequest(key, { method, url, headers }, options.nowSeconds === undefined ? {} : { nowSeconds: options.nowSeconds })
  headers.set('signature-input', signed.signatureInput)
  headers.set('signature', signed.signature)
  const out: Record<string, string> = {}
  headers.forEach((value, name) => (out[name] = value))
  return out
}
