/**
 * A keyless write's scope is asked only when proxy() forwards it, after its body was read (review s31 L1): a scope
 * option that reads the body (the tenant in the JSON) consumed it before proxy() did, and the write became a 500.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey } from '../helpers.js'

describe('a keyless write on a route whose scope reads the body', () => {
  it('reaches the origin with its body, as it did before once() noted keyless scopes', async () => {
    const got: string[] = []
    const origin = {
      name: 'eu',
      fetcher: {
        fetch: async (req: Request) => {
          got.push(await req.text())
          return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
        },
      },
    }
    const app = new Hono()
    app.post('/orders', once({ required: false, scope: async (c) => String(((await c.req.json()) as { tenant: string }).tenant) }), proxy({ origins: [origin] }))
    const res = await app.request('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tenant":"t1","amount":5}' }, env)
    const keylessGot = [...got]
    // The keyed twin on the same route (control): identify() reads the body before the scope does.
    const keyed = await app.request('/orders', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `"${newKey()}"` }, body: '{"tenant":"t1","amount":5}' }, env)
    expect(keyed.status).toBe(201)
    expect({ status: res.status, got: keylessGot }).toEqual({ status: 201, got: ['{"tenant":"t1","amount":5}'] })
  })
})
