/** The client's credentials: a logical request is stored and resent, so they stay at the edge unless a route lists them (DESIGN §6). */
export const CREDENTIALS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization'])

/**
 * The client credentials a route's `forwardHeaders` lists (`Authorization`,
 * `Cookie`, `Proxy-Authorization`), lower-case: forwarded, and so stored
 * with the request while it may be sent again.
 *
 * @param allow - the route's `forwardHeaders`
 * @returns the listed credentials, none when it lists none
 * @example
 * listedCredentials(['Authorization', 'x-tenant']) // ['authorization']
 */
export function listedCredentials(allow: readonly string[] | undefined): string[] {
  return (allow ?? []).map((name) => name.toLowerCase()).filter((name) => CREDENTIALS.has(name))
}
