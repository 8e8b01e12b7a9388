/*
 * (Review s30b.) the one credential-header rule (src/gateway/header-options.ts SECRET_NAME) reads "api key" as
 * `api-?key` only, and knows no `auth` or `key` names: `X-API_KEY` (underscore, a legal header name), Cloudflare's own
 * `X-Auth-Key`, Azure's `Ocp-Apim-Subscription-Key` and `X-Functions-Key`, `X-Access-Key` are accepted as
 * keys.scope / routes.N.domain, so the credential is stored as it is, sent to every origin and shown on the status page.
 */
import { describe, expect, it } from 'vitest'
import { parseGatewayConfig } from '../../src/gateway/config.js'

const origins = [{ name: 'eu', url: 'https://eu.example' }]
const scoped = (scope: string) => ({ origins, routes: [{ path: '/*' }], keys: { scope } })

describe('credential headers under other names (any name ending in key)', () => {
  it.each(['X-API_KEY', 'api_key', 'X-Auth-Key', 'Ocp-Apim-Subscription-Key', 'X-Functions-Key', 'X-Access-Key'])('refuses keys.scope header:%s', (name) => {
    expect(() => parseGatewayConfig(scoped(`header:${name}`))).toThrow(/keys\.scope: a credential header/)
  })
})

describe('headers an authenticating hop sets, which a header: scope is for', () => {
  it.each(['X-Tenant', 'X-User-Id', 'Cf-Access-Authenticated-User-Email', 'X-Authenticated-User', 'X-Customer'])('accepts keys.scope header:%s', (name) => {
    expect(() => parseGatewayConfig(scoped(`header:${name}`))).not.toThrow()
  })
})
