import type { Context } from 'hono'
import { type Principal, principalHeader } from '../shared/principal.js'
import { ONCE_HEADERS, SAFE_METHODS } from '../shared/wire.js'
import { forwardHeaders, resolveSecret } from '../shared/send.js'
import type { SecretOption } from '../shared/types.js'
import { problem } from '../shared/problem.js'
import { unsignableHeader } from '../shared/signature.js'
import { readUpTo } from '../shared/read-limited.js'
import { readRequestBody } from '../shared/request-body.js'
import type { ForwardRequest } from './types.js'

// Defined with the options (which the gateway's config reads without the sending code).
export { MAX_RELAY_BODY_BYTES, MAX_RELAY_HEADER_BYTES } from './options.js'

/**
 * How a request is forwarded: the route's header allow-list (`forwardHeaders`)
 * and who made it (sent as `Once-Principal`).
 *
 * @example
 * const how: ForwardOptions = { allow: ['x-tenant'], principal: { scope: 'tenant-42' } }
 */
export interface ForwardOptions {
  allow?: readonly string[] | undefined
  principal?: Principal | undefined
  /** The request is kept in an ordering domain's log: without `allow`, no credential header at all is forwarded (see `forwardHeaders`). */
  logged?: boolean
}

/**
 * The request as it travels to origins (and is stored for resends): method,
 * path with query, the headers that may be forwarded (no client credentials
 * on a logical request unless allow-listed, see `forwardHeaders`), the
 * caller as `Once-Principal`, and the exact body.
 *
 * @param req - the incoming request
 * @param body - its body, already read
 * @param options - the route's allow-list and the principal
 * @returns the forward request
 * @example
 * const request = forwardRequest(c.req.raw, new Uint8Array(await c.req.arrayBuffer()), { principal: principalOf(c, c.var.once.scope) })
 */
export function forwardRequest(req: Request, body: Uint8Array, options: ForwardOptions = {}): ForwardRequest {
  const url = new URL(req.url)
  const method = req.method.toUpperCase()
  const headers = forwardHeaders(req.headers, method, options.allow, options.logged)
  if (options.principal) headers.push([ONCE_HEADERS.principal.toLowerCase(), principalHeader(options.principal)])
  return { method, path: url.pathname + url.search, headers, body }
}

/**
 * The body of a request `proxy()`/`dispatch()` sends, at most `maxBytes`: the
 * incoming request's as once() reads it (bounded, a 413 only once the client
 * has sent it, left readable for whoever reads it next), or that of a request
 * the app made, read from a clone (the app's own stays readable).
 *
 * @param c - the request context
 * @param req - what to send: `c.req.raw`, or a request the app made
 * @param maxBytes - the largest body sent, in bytes
 * @returns the bytes, or `'too-large'`
 * @example
 * const body = await readForwardBody(c, c.req.raw, 1024 * 1024)
 * if (body === 'too-large') return problem('body-too-large', { detail: 'Over 1 MiB.', instance: c.req.path })
 */
export async function readForwardBody(c: Context, req: Request, maxBytes: number): Promise<Uint8Array | 'too-large'> {
  if (req === c.req.raw) return readRequestBody(c, maxBytes)
  const reader = req.clone().body?.getReader()
  if (!reader) return new Uint8Array()
  const body = await readUpTo(reader, maxBytes)
  if (body) return body
  await reader.cancel().catch(() => {})
  return 'too-large'
}

/**
 * The `500 misconfigured` answer for a route whose named signing secret is
 * not usable in `env` (unset, or too short), or undefined when it is (or the
 * route is unsigned). Checked by `once()` before it admits a relayed request
 * (then the admit stores nothing for a new key: an ordered one could never be
 * taken back) and by `proxy()` before it sends: nothing is ever sent unsigned.
 *
 * @param secret - the route's `secret` option
 * @param env - the Worker's env
 * @param instance - the request's path, for the problem
 * @returns the problem, or undefined
 * @example
 * const refused = secretProblem({ env: 'ONCE_SIGNING_SECRET' }, c.env, c.req.path)
 * if (refused) return refused
 */
export function secretProblem(secret: SecretOption | undefined, env: unknown, instance: string): Response | undefined {
  const resolved = resolveSecret(secret, env)
  return resolved && 'missing' in resolved ? missingSecret(resolved, instance) : undefined
}

/**
 * The answer for a signing secret {@link resolveSecret} found missing:
 * `500 misconfigured` ("nothing ran", `retryable: false`) when nothing of
 * the request was ever sent or kept to be sent; when an earlier attempt of
 * its key was sent, or its ordering domain's log holds it (the alarm sends
 * it once the secret is set), `502 origin-failed`, `retryable: true`: it may
 * have taken effect, or will, so the client retries with the same key
 * rather than send it again under another.
 *
 * @param resolved - the missing secret's name and why
 * @param instance - the request's path
 * @param pending - the key, and why the request may run, when it may
 * @returns the problem
 * @example
 * if (secret && 'missing' in secret) return missingSecret(secret, c.req.path)
 */
export function missingSecret(resolved: { missing: string; why: string }, instance: string, pending?: { key: string; why: string }): Response {
  const secret = `The proxy's signing secret env.${resolved.missing} ${resolved.why} (for wrangler dev, in .dev.vars; for a deployed Worker, wrangler secret put ${resolved.missing})`
  if (!pending) return problem('misconfigured', { detail: `${secret}.`, instance })
  return problem('origin-failed', { detail: `${secret}, so this attempt sent nothing; but ${pending.why}: retry with the same key once the secret is set.`, instance, idempotencyKey: pending.key })
}

/** The claims of a JWT verified by Hono's `jwt()` or `jwk()` middleware, as far as a principal needs them. */
interface JwtClaims {
  iss?: unknown
  sub?: unknown
}

/**
 * Who made a request, as the edge knows it: the issuer and subject of a
 * JWT that Hono's `jwt()`/`jwk()` verified (`c.var.jwtPayload`), else the
 * request's scope (a configured scope's value, or the Authorization-hash
 * fallback); undefined for an unscoped request.
 *
 * @param c - the request context
 * @param scope - the scope `once()` keyed the request under, or a keyless request's (see {@link callerScopeOf}); ''
 *   or undefined: none
 * @returns the principal, or undefined
 * @example
 * principalOf(c, 'tenant-42') // { scope: 'tenant-42' } (no JWT on the context)
 */
export function principalOf(c: Context, scope: string | undefined): Principal | undefined {
  const jwt = c.get('jwtPayload' as never) as JwtClaims | undefined
  if (jwt && typeof jwt === 'object' && typeof jwt.sub === 'string' && jwt.sub !== '') {
    return { iss: typeof jwt.iss === 'string' ? jwt.iss : undefined, sub: jwt.sub }
  }
  return scope ? { scope } : undefined
}

const callerScopes = new WeakMap<Context, () => Promise<string>>()

/**
 * Notes how to find the caller's scope of a request `once()` passes on
 * without a key (`required: false`), so that what `proxy()`/`dispatch()`
 * forward says who made it (`Once-Principal`), as for a keyed request: a
 * forwarded write carries no `Authorization`, and its origin reads the
 * caller from there. Asked only when a write is forwarded, after its body
 * was read (a scope option may read it too); the first `once()` on the
 * request notes it, as the first one keys a keyed request.
 *
 * @param c - the request context
 * @param scope - gives the scope once()'s `scope` option gives the request ('' for none)
 * @example
 * setCallerScope(c, () => config.callerScope(c))
 */
export function setCallerScope(c: Context, scope: () => Promise<string>): void {
  if (!callerScopes.has(c)) callerScopes.set(c, scope)
}

/**
 * The caller's scope {@link setCallerScope} noted for a keyless request, if
 * any; undefined when none was noted, the option gives '' or no string, or throws.
 *
 * @param c - the request context
 * @returns the scope, or undefined
 * @example
 * principalOf(c, c.get('once')?.scope ?? (await callerScopeOf(c)))
 */
export async function callerScopeOf(c: Context): Promise<string | undefined> {
  const scope = callerScopes.get(c)
  if (!scope) return undefined
  try {
    const value: unknown = await scope()
    return typeof value === 'string' && value !== '' ? value : undefined
  } catch {
    return undefined // the keyed requests of the route say so (500 misconfigured)
  }
}

/**
 * The 400 `header-unsignable` problem for a request that is to be signed
 * but carries a header every signature must cover with a value no
 * signature can carry (see `unsignableHeader`): every receiver would refuse
 * it on every attempt, so it is refused before anything is stored or sent.
 *
 * @param request - the request as it would be forwarded
 * @param instance - the request's path, for the problem
 * @param key - the idempotency key, when there is one
 * @returns the problem, or undefined when the request can be signed
 * @example
 * const refused = refuseUnsignable(request, c.req.path, key)
 * if (refused) return refused
 */
export function refuseUnsignable(request: ForwardRequest, instance: string, key: string | undefined): Response | undefined {
  const name = unsignableHeader(request.headers, !SAFE_METHODS.has(request.method.toUpperCase()))
  if (name === undefined) return undefined
  return problem('header-unsignable', {
    detail: `The ${name} header has bytes outside printable ASCII, which the signature to the origins cannot cover (RFC 9421), so no origin would accept the request. Send it in ASCII (e.g. RFC 8187's filename*= for names, percent-encoding for other values).`,
    instance,
    ...(key === undefined ? {} : { idempotencyKey: key }),
  })
}
