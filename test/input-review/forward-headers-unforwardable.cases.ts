import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { HOP_BY_HOP } from '../../src/shared/headers.js'

// Review s31 (input), finding 7: proxy()'s forwardHeaders is an allow-list of request headers that go on to the
// origins. A name the edge never forwards whatever the list says (Host, Content-Length, hop-by-hop ones, Cf-*, the wire
// contract's own: Idempotency-Key, Once-*, Signature*, Content-Digest) was accepted and silently ignored: the operator
// who lists "host" (an origin that routes by the original host) believed it sent. Now it is refused at start-up, naming
// forwardHeaders and the names; and every name it accepts is forwarded (the property below).
const seenBy = (seen: Headers[]) => ({ name: 'o', fetcher: { fetch: async (req: Request) => (seen.push(req.headers), new Response('ok', { status: 201 })) } })

describe('proxy({ forwardHeaders }) refuses names it would never forward', () => {
  it('a listed Host is refused at start-up naming forwardHeaders and host', async () => {
    const origin = seenBy([])
    expect(() => proxy({ origins: [origin], forwardHeaders: ['host', 'x-tenant'] })).toThrow(/forwardHeaders: host is never forwarded/)
    for (const name of ['host', 'Host', 'content-length', 'transfer-encoding', 'accept-encoding', 'once-principal', 'Once-Request-Id', 'idempotency-key', 'signature', 'signature-input', 'content-digest', 'cf-connecting-ip', ...HOP_BY_HOP]) {
      expect(() => proxy({ origins: [origin], forwardHeaders: ['x-ok', name] }), name).toThrow(new RegExp(`invalid proxy\\(\\) options: forwardHeaders: ${name} is never forwarded`))
    }
    expect(() => proxy({ origins: [origin], forwardHeaders: ['host', 'cf-ray'] })).toThrow(/forwardHeaders: host, cf-ray are never forwarded/)
  })

  it('any header name: proxy() refuses it, or a request carrying it reaches the origin with it (never accepted and dropped)', async () => {
    const never = ['host', 'content-length', 'accept-encoding', 'idempotency-key', 'content-digest', 'signature', 'signature-input', ...HOP_BY_HOP]
    const token = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/)
    const name = fc.oneof(
      fc.constantFrom(...never),
      token.map((t) => `once-${t}`),
      token.map((t) => `cf-${t}`),
      token.map((t) => `x-${t}`),
      fc.constantFrom('authorization', 'cookie', 'content-type', 'x-tenant', 'accept', 'user-agent', 'once_principal', 'hostname', 'oncex', 'cfx'),
    ).chain((n) => fc.constantFrom(n, n.toUpperCase(), n[0]!.toUpperCase() + n.slice(1)))
    await fc.assert(
      fc.asyncProperty(name, fc.constantFrom('GET', 'POST'), async (header, method) => {
        const seen: Headers[] = []
        let handler: ReturnType<typeof proxy>
        try {
          handler = proxy({ origins: [seenBy(seen)], forwardHeaders: [header] })
        } catch (err) {
          expect((err as Error).message).toContain(`forwardHeaders: ${header} is never forwarded`)
          return
        }
        const app = new Hono().on(method, '/t', once({ unscoped: 'shared' }), handler)
        const headers: Record<string, string> = { [header]: 'v1' }
        if (method === 'POST') headers['idempotency-key'] = `"${crypto.randomUUID()}"`
        const res = await app.request('/t', { method, headers, ...(method === 'POST' ? { body: 'x' } : {}) }, env)
        expect(res.status).toBe(201)
        expect(seen).toHaveLength(1)
        expect(seen[0]!.get(header), `${method} ${header}`).toBe('v1')
      }),
      { numRuns: 150 },
    )
  })
})
