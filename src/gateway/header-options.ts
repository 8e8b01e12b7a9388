/**
 * The one rule for the gateway's options that read a request header as it is (`keys.scope: "header:<name>"`,
 * `routes.N.domain: "header:<name>"`): the value is stored (records, the log, relays), sent to every origin and shown
 * on the status page, so a header that carries a credential is refused at start-up.
 */
import { CREDENTIAL_CLASS, isCredentialHeader } from '../shared/credentials.js'

/**
 * Why the header `name` may not be read as it is by `option`, or undefined when it may.
 *
 * @param option - the option's path, for the message (`keys.scope`, `routes.0.domain`)
 * @param name - the header's name
 * @param instead - what to use instead, for the message
 * @returns the message (without the `hono-once: invalid ONCE_CONFIG options:` prefix), or undefined
 * @example
 * credentialHeaderProblem('routes.0.domain', 'X-Api-Key', 'a header naming the account') // 'routes.0.domain: a credential header …'
 */
export function credentialHeaderProblem(option: string, name: string, instead: string): string | undefined {
  if (!isCredentialHeader(name)) return undefined
  return `${option}: a credential header (${name}; refused: ${CREDENTIAL_CLASS}) would be stored as it is, sent to every origin and shown on the status page: use ${instead}`
}
