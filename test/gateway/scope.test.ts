/**
 * Whose keys are these, behind the gateway (`keys.scope`): anonymous callers never share a key space unless the
 * config says "none"; a header read as it is (scope or ordering domain) may not be a credential; and the
 * documented way to keep a key across a token refresh works.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it, vi } from 'vitest'
import gateway, { parseGatewayConfig } from '../../src/gateway.js'
import { PROBLEM_BASE } from '../../src/shared/problem.js'
import { startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const call = (config: unknown, path: string, init: RequestInit) =>
  gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) }, ctx)
const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
/** A JWT for `sub` issued at `iat` (unsigned: the gateway verifies none). */
const jwt = (sub: string, iat: number) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, iat, exp: iat + 900 })}.c2ln`

async function depositor(keys?: object) {
  const [eu] = await startOrigins(['eu'])
  const config = { origins: [{ name: 'eu', url: eu!.url }], routes: [{ path: '/accounts/*', methods: ['POST'], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }], ...(keys ? { keys } : {}) }
  const account = `acct-${crypto.randomUUID().slice(0, 8)}`
  const send = (key: string, headers: Record<string, string>, amount = 100) =>
    call(config, `/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ amount }) })
  return { send, balance: async () => (await eu!.stats()).balances[account] ?? 0 }
}

describe('the gateway: anonymous writes', () => {
  it('refuses a keyed write without Authorization under the default scope (400 scope-missing), so anonymous callers never share keys', async () => {
    const { send, balance } = await depositor()
    const key = newKey()
    for (const amount of [100, 1]) {
      const res = await send(key, { 'x-caller': 'a' }, amount)
      expect(res.status).toBe(400)
      expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}scope-missing`, retryable: false })
    }
    expect(await balance()).toBe(0)
    // A caller with Authorization is served as before.
    expect((await send(key, { authorization: 'Bearer a' })).status).toBe(201)
    expect(await balance()).toBe(100)
  })

  it('refuses it under an explicit keys.scope "authorization" too; "none" is the one way to share keys', async () => {
    const explicit = await depositor({ scope: 'authorization' })
    expect((await explicit.send(newKey(), {})).status).toBe(400)
    const shared = await depositor({ scope: 'none' })
    const key = newKey()
    expect((await shared.send(key, {})).status).toBe(201)
    expect((await shared.send(key, {})).headers.get('idempotent-replayed')).toBe('true')
    expect(await shared.balance()).toBe(100)
  })
})

describe('the gateway: a key across a token refresh', () => {
  it('"authorization" is the hash of the header: a refreshed token is a new scope (docs/gateway.md says so)', async () => {
    const { send, balance } = await depositor()
    const key = newKey()
    expect((await send(key, { authorization: `Bearer ${jwt('alice', 1_800_000_000)}` })).status).toBe(201)
    const later = await send(key, { authorization: `Bearer ${jwt('alice', 1_800_000_600)}` })
    expect(later.headers.get('idempotent-replayed')).toBeNull()
    expect(await balance()).toBe(200)
  })

  it('behind refreshing tokens, "header:<user header>" set by an authenticating hop keeps the key: the retry is a replay', async () => {
    const { send, balance } = await depositor({ scope: 'header:X-User-Id' })
    const key = newKey()
    expect((await send(key, { 'x-user-id': 'alice', authorization: `Bearer ${jwt('alice', 1_800_000_000)}` })).status).toBe(201)
    const later = await send(key, { 'x-user-id': 'alice', authorization: `Bearer ${jwt('alice', 1_800_000_600)}` })
    expect(later.headers.get('idempotent-replayed')).toBe('true')
    // Another user's records are apart.
    expect((await send(key, { 'x-user-id': 'bob' })).headers.get('idempotent-replayed')).toBeNull()
    expect(await balance()).toBe(200)
  })
})

describe('the gateway: a header read as it is may not be a credential', () => {
  const origins = [{ name: 'eu', url: 'https://eu.example' }]
  const ordered = (domain: string) => ({ origins, routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain }] })
  const scoped = (scope: string) => ({ origins, routes: [{ path: '/*' }], keys: { scope } })
  const credentials = ['Authorization', 'cookie', 'PROXY-AUTHORIZATION', 'X-Api-Key', 'Api-Key', 'X-Auth-Token', 'Cf-Access-Jwt-Assertion', 'X-Session', 'X-Client-Secret']

  it.each(credentials)('refuses %s as routes.N.domain and as keys.scope at start-up, naming the option', (name) => {
    expect(() => parseGatewayConfig(ordered(`header:${name}`))).toThrow(new RegExp(`routes\\.0\\.domain: a credential header \\(${name};`))
    expect(() => parseGatewayConfig(scoped(`header:${name}`))).toThrow(new RegExp(`keys\\.scope: a credential header \\(${name};`))
  })

  it.each(['X-Account', 'X-Tenant', 'x-authorization-tenant', 'Cf-Access-Authenticated-User-Email'])('accepts %s as the domain and as the scope', (name) => {
    expect(() => parseGatewayConfig(ordered(`header:${name}`))).not.toThrow()
    expect(() => parseGatewayConfig(scoped(`header:${name}`))).not.toThrow()
  })
})

describe('the gateway: Basic credentials under the default scope', () => {
  it('keeps Basic callers apart and warns (once) that their scope hashes user:password, a guessable secret at rest', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { send } = await depositor()
    const key = newKey()
    const first = await send(key, { authorization: `Basic ${btoa('ann:pw1')}` })
    const other = await send(key, { authorization: `Basic ${btoa('bob:pw2')}` })
    await send(newKey(), { authorization: `Basic ${btoa('ann:pw1')}` })
    const warned = warn.mock.calls.filter(([m]) => /Basic credentials/.test(String(m)))
    warn.mockRestore()
    expect([first.status, other.status, other.headers.get('idempotent-replayed')]).toEqual([201, 201, null])
    expect(warned).toHaveLength(1)
  })
})
