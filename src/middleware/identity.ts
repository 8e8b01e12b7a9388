import type { Context } from 'hono'
import { sha256Hex } from '../shared/digest.js'
import { heldRequest } from '../shared/request-body.js'

/**
 * The record's lookup key: scope and idempotency key, length-prefixed so no
 * choice of scope can collide with another scope's keys.
 *
 * @param scope - tenant scope ('' for none)
 * @param key - the client's idempotency key
 * @returns the lookup key the stable area stores
 * @example
 * lookupKey('', 'k1') // '0::k1'
 */
export function lookupKey(scope: string, key: string): string {
  return `${scope.length}:${scope}:${key}`
}

/**
 * Name of the StableArea object that owns `lookup`: `once/<n>`, with `n`
 * the lookup key's SHA-256 modulo `shards`. Changing `shards` moves keys to
 * other objects, so in-flight and stored keys are forgotten: change it only
 * with a new namespace or after a TTL of quiet.
 *
 * @param lookup - from {@link lookupKey}
 * @param shards - how many objects the keys are spread over
 * @returns the name to pass to `idFromName`
 * @example
 * namespace.idFromName(await shardName(lookup, 4))
 */
export async function shardName(lookup: string, shards: number): Promise<string> {
  if (shards === 1) return 'once/0'
  const hex = await sha256Hex(lookup)
  return `once/${Number.parseInt(hex.slice(0, 8), 16) % shards}`
}

/** An `Authorization` header of the `Basic` scheme (RFC 7617; the scheme name is case-insensitive). */
const BASIC = /^\s*basic(\s|$)/i

/** The claims of a JWT verified by Hono's `jwt()` or `jwk()` middleware, as far as scoping needs them. */
interface JwtPrincipal {
  iss?: unknown
  sub?: unknown
}

/**
 * The default scope: who is asking, as far as the request shows it.
 *
 * 1. When Hono's `jwt()` / `jwk()` middleware ran before `once()`
 *    (`c.var.jwtPayload` holds a `sub`), the principal: issuer and subject
 *    together (a `sub` is unique only within its `iss`). A refreshed token of
 *    the same subject finds its records; another subject never does.
 * 2. Otherwise the SHA-256 of the `Authorization` header (an API key or
 *    static token; a bearer token that is refreshed lands in a new scope).
 *    For `Basic` credentials that hash is of `user:password`, a guessable
 *    secret: `basic` says so, and `once()` warns (give a `scope` instead).
 * 3. Otherwise '' (unscoped): requests of every caller share keys. Give a
 *    `scope` option for cookie sessions, e.g. `(c) => c.var.session.userId`.
 *
 * @param c - the request context
 * @returns the scope, whether it is the unscoped fallback, and whether it hashes a `Basic` credential
 * @example
 * await defaultScope(c) // { scope: 'jwt:3f2a…', unscoped: false, basic: false }
 */
export async function defaultScope(c: Context): Promise<{ scope: string; unscoped: boolean; basic: boolean }> {
  const jwt = c.get('jwtPayload' as never) as JwtPrincipal | undefined
  if (jwt && typeof jwt === 'object' && typeof jwt.sub === 'string' && jwt.sub !== '') {
    const iss = typeof jwt.iss === 'string' ? jwt.iss : ''
    return { scope: `jwt:${await sha256Hex(`${iss.length}:${iss}:${jwt.sub}`)}`, unscoped: false, basic: false }
  }
  // The request as it came: reading its headers does not make the handler's copy of it (request-body.ts).
  const authorization = heldRequest(c).headers.get('authorization')
  if (authorization) return { scope: await sha256Hex(authorization), unscoped: false, basic: BASIC.test(authorization) }
  return { scope: '', unscoped: true, basic: false }
}
