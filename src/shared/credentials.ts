/** The client's credentials by the standard names: a logical request is stored and resent, so they stay at the edge unless a route lists them (DESIGN §6). */
export const CREDENTIALS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization'])

/**
 * Header names that carry a secret whatever the app: a token, a password, a session, a JWT, a signature, or any
 * key (`X-Api-Key`, `api_key`, `X-Auth-Key`, `Ocp-Apim-Subscription-Key`, `X-Functions-Key`): a name that ends in
 * "key" names one. `-` and `_` are alike in header names.
 */
const SECRET_NAME = /token|secret|passw|jwt|session|csrf|xsrf|signature|credential|key$/i

/** The class {@link isCredentialHeader} refuses, in words, for messages and docs. */
export const CREDENTIAL_CLASS =
  'Authorization, Cookie, Proxy-Authorization and any name with token, secret, password, jwt, session, csrf, signature or credential, or ending in key'

/**
 * The one rule for "does this header carry a credential?", wherever a
 * header's value would be kept at rest: the standard credentials
 * ({@link CREDENTIALS}) and any name that says it carries a secret
 * (`X-Api-Key`, `X-Auth-Token`, `X-Session`, …).
 *
 * @param name - a header name, any case
 * @returns true for a credential header
 * @example
 * isCredentialHeader('X-Api-Key') // true
 * isCredentialHeader('x-tenant') // false
 */
export function isCredentialHeader(name: string): boolean {
  const lower = name.toLowerCase()
  return CREDENTIALS.has(lower) || SECRET_NAME.test(lower)
}

/**
 * The credential headers ({@link isCredentialHeader}) a route's
 * `forwardHeaders` lists, lower-case: forwarded, and so stored with the
 * request while it may be sent again.
 *
 * @param allow - the route's `forwardHeaders`
 * @returns the listed credentials, none when it lists none
 * @example
 * listedCredentials(['Authorization', 'x-tenant', 'X-Api-Key']) // ['authorization', 'x-api-key']
 */
export function listedCredentials(allow: readonly string[] | undefined): string[] {
  return (allow ?? []).map((name) => name.toLowerCase()).filter(isCredentialHeader)
}
