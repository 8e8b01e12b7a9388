/**
 * The `ONCE_STATUS_TOKEN` secret: who may read what the gateway tells operators only (the status page, a bad
 * config's whole message). One rule for both.
 */

/** The shortest `ONCE_STATUS_TOKEN` that opens anything: as for the signing secret. */
export const MIN_STATUS_TOKEN_LENGTH = 16

/**
 * Whether an `Authorization` header holds the status token as `Bearer <token>`, compared in constant time. A token
 * shorter than {@link MIN_STATUS_TOKEN_LENGTH} opens nothing.
 *
 * @param authorization - the request's `Authorization` header
 * @param token - the `ONCE_STATUS_TOKEN` secret, if set
 * @returns true when the caller holds the token
 * @example
 * holdsStatusToken(c.req.header('authorization'), c.env.ONCE_STATUS_TOKEN)
 */
export function holdsStatusToken(authorization: string | undefined, token: string | undefined): boolean {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]
  return !!token && token.length >= MIN_STATUS_TOKEN_LENGTH && !!bearer && timingSafeEqual(bearer, token)
}

/** Compares two strings without an early exit (the token must not leak through timing). */
function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}
