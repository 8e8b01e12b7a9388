/**
 * `Once-Principal` (DESIGN §6): who made a forwarded request, as the edge
 * authenticated it, so origins never need the client's credentials. An
 * RFC 8941 dictionary: `iss="…", sub="…"` for a verified JWT, `scope="…"`
 * for a configured scope or the opaque Authorization-hash fallback. Values
 * that are not printable ASCII travel as RFC 9651 Display Strings (`%"…"`).
 *
 * @module
 */
import { DisplayString, isInnerList, parseDictionary, serializeDictionary, type Dictionary } from 'structured-headers'

/**
 * Who made a request: the issuer and subject of a verified JWT, or the
 * scope the edge keyed it under.
 *
 * @example
 * const p: Principal = { iss: 'https://auth.example.com', sub: 'user-17' }
 */
export type Principal = { iss?: string | undefined; sub: string } | { scope: string }

const PRINTABLE = /^[\x20-\x7e]*$/
/** Longest value carried: a principal names someone, it is not a payload. */
const MAX_VALUE = 1024

/**
 * The `Once-Principal` header value of a principal.
 *
 * @param principal - who made the request
 * @returns the header value
 * @example
 * principalHeader({ iss: 'https://auth.example.com', sub: 'user-17' }) // 'iss="https://auth.example.com", sub="user-17"'
 * principalHeader({ scope: 'tenant-42' }) // 'scope="tenant-42"'
 */
export function principalHeader(principal: Principal): string {
  const item = (value: string) => [PRINTABLE.test(value) ? value : new DisplayString(value), new Map()] as [string | DisplayString, Map<string, never>]
  const dict: Dictionary = new Map()
  if ('scope' in principal) dict.set('scope', item(principal.scope.slice(0, MAX_VALUE)))
  else {
    if (principal.iss !== undefined && principal.iss !== '') dict.set('iss', item(principal.iss.slice(0, MAX_VALUE)))
    dict.set('sub', item(principal.sub.slice(0, MAX_VALUE)))
  }
  return serializeDictionary(dict)
}

/**
 * Reads a `Once-Principal` header.
 *
 * @param value - the header value, or null when absent
 * @returns the principal, or undefined when absent or unreadable
 * @example
 * parsePrincipal('iss="https://auth.example.com", sub="user-17"') // { iss: 'https://auth.example.com', sub: 'user-17' }
 */
export function parsePrincipal(value: string | null): Principal | undefined {
  if (value === null) return undefined
  let dict: Dictionary
  try {
    dict = parseDictionary(value)
  } catch {
    return undefined
  }
  const text = (key: string): string | undefined => {
    const member = dict.get(key)
    if (member === undefined || isInnerList(member)) return undefined
    const v = member[0]
    return typeof v === 'string' ? v : v instanceof DisplayString ? v.toString() : undefined
  }
  const sub = text('sub')
  if (sub !== undefined) return { iss: text('iss'), sub }
  const scope = text('scope')
  return scope === undefined ? undefined : { scope }
}
