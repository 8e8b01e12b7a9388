/**
* Review s31 (last) L-two-once: with two once() on a route (app.use plus the route's own, which once.ts supports:
 * "the first one owns it"), a keyed write's Once-Principal is the first once()'s scope, but a keyless one's is the
 * last once()'s: both run noteCallerScope() (c.get('once') is never set for a keyless request) and the second
 * overwrites the first (forward.ts setCallerScope). docs/gateway.md and once.md say a keyless write carries "the
 * same Once-Principal a keyed write of its caller carries".
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey } from '../helpers.js'

describe('a keyless write behind two once()', () => {
  it('carries the Once-Principal its keyed twin carries', async () => {
    const principals: (string | null)[] = []
    const origin = {
      name: 'eu',
      fetcher: {
        fetch: async (req: Request) => {
          principals.push(req.headers.get('once-principal'))
          return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
        },
      },
    }
    const app = new Hono()
    app.use('/orders', once({ required: false, scope: () => 'tenant-from-session' }))
    app.post('/orders', once({ required: false, scope: () => 'route-scope' }), proxy({ origins: [origin] }))
    const keyed = await app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    const keyless = await app.request('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }, env)
    console.log(`keyed ${keyed.status} principal ${principals[0]} | keyless ${keyless.status} principal ${principals[1]}`)
    expect(principals[1]).toBe(principals[0])
  })
})
