import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'

// Review s31 (input): proxy()'s forwardHeaders is an allow-list of request headers that go on to the origins. A name
// the edge never forwards whatever the list says (Host, Content-Length, hop-by-hop ones, Cf-*, the wire contract's
// own: Idempotency-Key, Once-*, Signature*, Content-Digest) is accepted and silently ignored: the operator who lists
// "host" (an origin that routes by the original host) believes it is sent. Options never read are refused elsewhere
// (the gateway's unreadOption; DESIGN §8: a bad option fails at start-up naming it).
describe("proxy({ forwardHeaders }) refuses names it would never forward", () => {
  it('a listed Host is not forwarded, so listing it is refused at start-up naming forwardHeaders', async () => {
    const seen: (string | null)[] = []
    const origin = { name: 'o', fetcher: { fetch: async (req: Request) => (seen.push(req.headers.get('x-original-host') ?? req.headers.get('host')), new Response('ok', { status: 201 })) } }
    const build = () => proxy({ origins: [origin], forwardHeaders: ['host', 'x-tenant'] })
    let handler: ReturnType<typeof proxy> | undefined
    try {
      handler = build()
    } catch {
      // refused: what this test asks for
    }
    if (handler) {
      const app = new Hono().post('/t', once({ unscoped: 'shared' }), handler)
      await app.request('https://tenant-a.example/t', { method: 'POST', headers: { host: 'tenant-a.example', 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, env)
      // The origin did not get the client's Host, though the route lists it.
      expect(seen[0]).not.toBe('tenant-a.example')
    }
    for (const name of ['host', 'content-length', 'transfer-encoding', 'once-principal', 'idempotency-key', 'signature', 'cf-connecting-ip']) {
      expect(() => proxy({ origins: [origin], forwardHeaders: [name] }), name).toThrow(/forwardHeaders/)
    }
  })
})
