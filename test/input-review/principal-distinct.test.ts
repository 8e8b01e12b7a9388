import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { parsePrincipal, principalHeader, type Principal } from '../../src/shared/principal.js'

// Review s31 (input): Once-Principal is how an origin tells callers apart (docs/origin.md: "the origin trusts the
// signature and reads the caller from Once-Principal"). Two different callers must never arrive as one.
describe('Once-Principal keeps different callers apart', () => {
  it('two scopes that differ only after their first 1024 characters reach the origin as two principals', async () => {
    const seen: string[] = []
    const origin = { name: 'o', fetcher: { fetch: async (req: Request) => { seen.push(req.headers.get('once-principal') ?? ''); return new Response('ok', { status: 201, headers: { 'once-applied': '?1' } }) } } }
    const app = new Hono()
    app.post('/t/*', once({ scope: (c) => c.req.header('x-tenant') ?? '' }), proxy({ origins: [origin] }))
    const tenantA = `${'t'.repeat(1024)}-alice`
    const tenantB = `${'t'.repeat(1024)}-bob`
    for (const tenant of [tenantA, tenantB]) {
      const res = await app.request('/t/x', { method: 'POST', headers: { 'x-tenant': tenant, 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, env)
      expect(res.status).toBe(201)
    }
    expect(seen).toHaveLength(2)
    expect(parsePrincipal(seen[0]!)).toEqual({ scope: tenantA })
    expect(seen[0]).not.toBe(seen[1])
  })

  it('principalHeader is one-to-one: distinct principals give distinct headers, and each parses back to itself', () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 1100 }), fc.string({ minLength: 1020, maxLength: 1100 }))
    const principal: fc.Arbitrary<Principal> = fc.oneof(text.map((scope) => ({ scope })), fc.record({ iss: fc.option(text.filter((s) => s !== ''), { nil: undefined }), sub: text.filter((s) => s !== '') }))
    fc.assert(
      fc.property(principal, (p) => {
        expect(parsePrincipal(principalHeader(p))).toEqual(p)
      }),
      { numRuns: 300, examples: [[{ scope: `${'s'.repeat(1024)}x` }], [{ sub: '\ud800' }]] },
    )
  })
})
