import type { Context } from 'hono'

/**
 * The headers outer middleware set for this caller before `once()` handed
 * the request on (`c.header()`: a request id, a rate limit; `cors()`'s, set
 * on `c.res`), as a handler's `c.json()` would get them. Taken before the
 * handler runs: after it, Hono's `c.newResponse()` starts from the
 * handler's own response.
 *
 * @param c - the request context
 * @returns a copy of the headers
 * @example
 * const caller = callerHeaders(c) // before next()
 */
export function callerHeaders(c: Context): Headers {
  return c.newResponse(null, 200).headers
}

/**
 * An answer of `once()`'s own (a replay, a problem, the committed reply in
 * place of a later failure) with the caller's headers ({@link callerHeaders}):
 * Hono adds them by itself only to a response it makes; the stored reply
 * holds none of them (see `replayedByDefault`), and the caller's own win. A
 * caller's cookie replaces a stored one of the same name. The body's own
 * headers (`Content-Type`, `Content-Length`, `Content-Encoding`) stay the answer's.
 *
 * @param res - the answer (its headers are changed in place)
 * @param outer - the caller's headers
 * @returns `res`
 * @example
 * return withCallerHeaders(problem('key-reused', init), callerHeaders(c))
 */
export function withCallerHeaders(res: Response, outer: Headers): Response {
  outer.forEach((value, name) => {
    if (!BODY_HEADERS.has(name) && name !== 'set-cookie') res.headers.set(name, value)
  })
  const cookies = outer.getSetCookie()
  if (cookies.length > 0) {
    // A cookie of this caller's replaces a stored one of the same name (stored when replayHeaders names set-cookie).
    const names = new Set(cookies.map(cookieName))
    const kept = res.headers.getSetCookie().filter((cookie) => !names.has(cookieName(cookie)))
    res.headers.delete('set-cookie')
    for (const cookie of [...kept, ...cookies]) res.headers.append('set-cookie', cookie)
  }
  return res
}

/**
 * Answers with `res`, an answer of the middleware's own, as the caller's
 * answer: with the caller's headers ({@link withCallerHeaders}), set as
 * `c.res` in place of whatever was there. Returned to Hono as it is, a
 * response is merged with an existing `c.res`, whose cookies then replace
 * all of the answer's (a replay's stored ones, an object's session cookie).
 *
 * @param c - the request context
 * @param res - the answer
 * @param caller - the caller's headers, taken before anything ran
 * @returns the answer as set on `c`
 * @example
 * return answerWith(c, replayResponse(reply), caller)
 */
export function answerWith(c: Context, res: Response, caller: Headers): Response {
  c.res = undefined
  c.res = withCallerHeaders(res, caller)
  return c.res
}

/** Headers that describe a body: an answer keeps its own. */
const BODY_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'content-encoding'])

/** The name of a `Set-Cookie` value: what comes before its first `=` (RFC 6265 §5.2), trimmed. */
const cookieName = (cookie: string): string => cookie.slice(0, Math.max(0, cookie.indexOf('='))).trim()
