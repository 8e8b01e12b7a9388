/**
 * The gateway's optional `cors` block: browsers on other origins may call it, and every answer carries the CORS
 * headers, the replay of a stored reply and the gateway's own problems included. `once()` stores a reply without
 * `access-control-*` (they are the caller's, added again to each answer by a `cors()` in front of it), so behind the
 * gateway the CORS headers come from here, in front of `once()`, never from an origin.
 */
import type { Handler, MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'
import * as z from 'zod/mini'

/** The `cors` block of `ONCE_CONFIG`. */
export interface GatewayCors {
  /** The browser origins allowed (`https://shop.example`, exactly as a browser sends `Origin`), or `"*"` for any. */
  origins: string[] | '*'
  /** Allow credentials (cookies, HTTP auth); not with `"*"`, which browsers refuse then. Default false. */
  credentials?: boolean
  /** How long a browser may keep a preflight's answer (`Access-Control-Max-Age`). */
  maxAgeSeconds?: number
}

/** The answer headers a browser script may read: what hono-once/client reads (`Retry-After`, `Idempotent-Replayed`), and who served. */
export const EXPOSED_HEADERS = ['Retry-After', 'Idempotent-Replayed', 'Once-Origin', 'Once-Sequence']

/** The methods a preflight allows: the ones a route may serve, but OPTIONS, which the gateway answers itself. */
const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']

/** `https://shop.example`, as a browser's `Origin` header has it: a scheme, a host and maybe a port; nothing else. */
const browserOrigin = z.string().check(
  z.refine((v) => {
    try {
      const u = new URL(v)
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === v
    } catch {
      return false
    }
  }, 'expected an origin as a browser sends it: scheme and host (and port), no path or trailing slash, e.g. https://shop.example'),
)

/** The schema of the `cors` block (part of the config's schema). */
export const corsSchema = z.optional(
  z
    .strictObject({
      origins: z.union([z.literal('*'), z.array(browserOrigin).check(z.minLength(1), z.maxLength(100))]),
      credentials: z.optional(z.boolean()),
      maxAgeSeconds: z.optional(z.number().check(z.int(), z.gte(0), z.lte(86_400))),
    })
    .check(z.refine((c) => !(c.credentials && c.origins === '*'), { message: 'browsers refuse credentials with origins "*": list the origins', path: ['credentials'] })),
)

/**
 * Hono's `cors()` for the config's block, in front of everything the gateway answers: it answers preflights
 * (`OPTIONS`) itself, and adds `Access-Control-Allow-Origin` (for an allowed `Origin`) and the exposed headers to
 * every answer.
 *
 * @param options - the config's `cors` block
 * @returns the middleware
 * @example
 * app.use(gatewayCors({ origins: ['https://shop.example'] }))
 */
export function gatewayCors(options: GatewayCors): MiddlewareHandler {
  return cors({
    origin: options.origins === '*' ? '*' : options.origins,
    allowMethods: ALLOWED_METHODS,
    exposeHeaders: EXPOSED_HEADERS,
    ...(options.credentials ? { credentials: true } : {}),
    ...(options.maxAgeSeconds !== undefined ? { maxAge: options.maxAgeSeconds } : {}),
  })
}

/**
 * The route's handler with the origins' own `access-control-*` answer headers dropped, so that the first answer
 * and its replay carry the same CORS headers: the gateway's.
 *
 * @param handler - the route's `proxy()` handler
 * @returns the handler
 * @example
 * app.post('/a/*', once(), proxyWith(group, withoutOriginCors))
 */
export function withoutOriginCors(handler: Handler): Handler {
  return async function withoutOriginCors(c, next) {
    const res = await handler(c, next)
    if (!(res instanceof Response)) return res
    const names: string[] = []
    res.headers.forEach((_value, name) => void (name.startsWith('access-control-') && names.push(name)))
    if (names.length === 0) return res
    const out = new Response(res.body, res)
    for (const name of names) out.headers.delete(name)
    return out
  }
}
