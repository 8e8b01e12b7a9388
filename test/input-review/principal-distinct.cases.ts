import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { parsePrincipal, principalHeader, type Principal } from '../../src/shared/principal.js'

// Review s31 (input), finding 3: Once-Principal is how an origin tells callers apart (docs/origin.md: "the origin
// trusts the signature and reads the caller from Once-Principal"). principalHeader cut values at 1024 UTF-16 units
// and turned a lone surrogate into U+FFFD, so two callers could arrive as one. Now a value travels as it is, or (past
// 1024 code units, not well-formed, or starting with the marker) as "sha-256:<hex of its UTF-8 / WTF-8 bytes>":
// one to one.
const hex = async (bytes: Uint8Array) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')

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
    // What the origin reads: the SHA-256 of the scope's UTF-8 bytes, behind a marker (it can compute the same).
    expect(parsePrincipal(seen[0]!)).toEqual({ scope: `sha-256:${await hex(new TextEncoder().encode(tenantA))}` })
    expect(parsePrincipal(seen[1]!)).toEqual({ scope: `sha-256:${await hex(new TextEncoder().encode(tenantB))}` })
    expect(seen[0]).not.toBe(seen[1])
  })

  it('a well-formed value written in at most 1024 bytes travels as it is; a longer one, an ill-formed one, or one starting with the marker, hashed', () => {
    // Control characters too: a byte below 0x10 is written with two hex digits ("\t" as %09, not %9).
    // At the limit: 1022 characters and two quotes; 511 escaped quotes; 170 × %c3%a9 and %"…"; 85 × %f0%9f%98%80.
    for (const value of ['tenant-42', 'a\tb', '\u0000', '\ta', '\u007f', '%', 's'.repeat(1022), '"'.repeat(511), 'é'.repeat(170), '😀'.repeat(85), 'x sha-256:y', 'SHA-256:abc']) {
      expect(parsePrincipal(principalHeader({ scope: value }))).toEqual({ scope: value })
      expect(principalHeader({ scope: value }).length).toBeLessThanOrEqual('scope='.length + 1024)
    }
    for (const value of ['s'.repeat(1023), '"'.repeat(512), 'é'.repeat(171), '😀'.repeat(86), 's'.repeat(100_000), '\ud800', '\udc00', 'a\ud83d', `sha-256:${'0'.repeat(64)}`, 'sha-256:']) {
      const sent = parsePrincipal(principalHeader({ scope: value }))
      expect(sent, JSON.stringify(value.slice(0, 12))).toEqual({ scope: expect.stringMatching(/^sha-256:[0-9a-f]{64}$/) })
      expect(parsePrincipal(principalHeader({ sub: value, iss: value }))).toEqual({ iss: (sent as { scope: string }).scope, sub: (sent as { scope: string }).scope })
    }
    // A value that looks like a hashed one is hashed again: it never meets the value it looks like.
    const hashed = (parsePrincipal(principalHeader({ scope: 's'.repeat(1025) })) as { scope: string }).scope
    expect(principalHeader({ scope: hashed })).not.toBe(principalHeader({ scope: 's'.repeat(1025) }))
  })

  it('principalHeader is one to one: distinct principals give distinct headers; a value sent as it is parses back to itself', () => {
    // Texts near the limit, with lone surrogates and the marker, and their near neighbours.
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: fc.constantFrom('a', 'é', '\ud800', '\udc00', '\ud83d\ude00', '"', '%', '\\'), maxLength: 12 }),
      fc.string({ minLength: 1020, maxLength: 1030, unit: fc.constantFrom('s', 't', '\ud800', 'é') }),
      fc.string({ minLength: 1016, maxLength: 1026, unit: fc.constantFrom('s', 't', '"') }),
      fc.string({ minLength: 165, maxLength: 175, unit: fc.constantFrom('é', 'ê', 's') }),
      fc.string({ maxLength: 70, unit: fc.constantFrom('0', 'f', 'a') }).map((h) => `sha-256:${h}`),
    )
    const principal: fc.Arbitrary<Principal> = fc.oneof(
      text.map((scope) => ({ scope })),
      fc.record({ iss: fc.option(text.filter((s) => s !== ''), { nil: undefined }), sub: text.filter((s) => s !== '') }),
    )
    const sameAs = (a: Principal, b: Principal) =>
      'scope' in a ? 'scope' in b && a.scope === b.scope : !('scope' in b) && a.sub === b.sub && (a.iss ?? '') === (b.iss ?? '')
    // Sent as it is: well-formed, not the marker, and written (RFC 9651: sf-string or Display String) in 1024 bytes at most.
    const written = (v: string) =>
      /^[\x20-\x7e]*$/.test(v) ? 2 + v.length + (v.match(/["\\]/g)?.length ?? 0) : 3 + [...new TextEncoder().encode(v)].reduce((n, b) => n + (b === 0x25 || b === 0x22 || b < 0x20 || b > 0x7e ? 3 : 1), 0)
    const plain = (v: string | undefined) => v === undefined || (!v.startsWith('sha-256:') && !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(v) && written(v) <= 1024)
    fc.assert(
      fc.property(principal, principal, (a, b) => {
        const [ha, hb] = [principalHeader(a), principalHeader(b)]
        if (!sameAs(a, b)) expect(ha).not.toBe(hb)
        if (!sameAs(a, b)) expect(parsePrincipal(ha)).not.toEqual(parsePrincipal(hb))
        if ('scope' in a ? plain(a.scope) : plain(a.iss) && plain(a.sub)) expect(parsePrincipal(ha)).toEqual(a)
      }),
      { numRuns: 500, examples: [[{ scope: `${'s'.repeat(1024)}x` }, { scope: `${'s'.repeat(1024)}y` }], [{ sub: '\ud800' }, { sub: '\udc00' }], [{ sub: '\ud800' }, { sub: '\ufffd' }], [{ sub: '\ta' }, { sub: '\tb' }], [{ scope: 'a\u0000' }, { scope: 'a\u0001' }]] },
    )
  })
})
