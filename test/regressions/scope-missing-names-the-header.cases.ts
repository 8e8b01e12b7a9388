// Review s32 (gateway): a keyed write the gateway cannot scope is a 400 `scope-missing` whose detail is generic ("The
// request does not say who is asking (the scope is empty)…", src/middleware/identify.ts:64). Behind the gateway the
// caller can only fix it by sending the header the config names: `Authorization` for the default
// `keys.scope: "authorization"`, the named header for `"header:<name>"`. The detail names neither, so a new user
// who tries the README's curl (no Authorization: fine with once() alone, a 400 behind the gateway) cannot tell what to send.
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import gateway from '../../src/gateway.js'
import { once } from '../../src/index.js'
import { newKey } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext

describe('400 scope-missing from the gateway', () => {
  it.each([
    ['the default keys.scope ("authorization")', {}, /Authorization/],
    ['keys.scope "header:X-Tenant"', { keys: { scope: 'header:X-Tenant' } }, /X-Tenant/i],
    ['keys.scope "header:x-api-tenant" (the name as configured)', { keys: { scope: 'header:x-api-tenant' } }, /no x-api-tenant header/],
  ])('names the header to send: %s', async (_, extra, names) => {
    const config = JSON.stringify({ origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/accounts/*', methods: ['POST'], strategy: 'failover' }], ...extra })
    const res = await gateway.fetch!(
      new Request('http://gateway.test/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }) as Request<
        unknown,
        IncomingRequestCfProperties
      >,
      { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: config },
      ctx,
    )
    expect(res.status).toBe(400)
    const problem = (await res.json()) as { type: string; detail: string }
    expect(problem.type).toBe('https://hono-once.dev/problems/scope-missing')
    expect(problem.detail).toMatch(names)
  })
})

describe('400 scope-missing from once() with a scope function of the app', () => {
  it('says so in general terms (what the function reads is the app\'s to know) and names no gateway header', async () => {
    const app = new Hono().post('/orders', once({ scope: () => '' }), (c) => c.text('ran', 201))
    const res = await app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: '{}' }, env)
    expect(res.status).toBe(400)
    const problem = (await res.json()) as { type: string; detail: string }
    expect(problem.type).toBe('https://hono-once.dev/problems/scope-missing')
    expect(problem.detail).toMatch(/credentials the app identifies its callers by/)
    expect(problem.detail).not.toMatch(/keys\.scope|Authorization/)
  })
})
