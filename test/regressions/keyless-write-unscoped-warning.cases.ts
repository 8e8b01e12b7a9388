/**
* Review s31 (last) L-keyless-warning: since 2fb347a once() calls the default scope for a keyless write
 * (`required: false`), so an anonymous keyless write (no JWT, no Authorization: a public form post) logs
 * "every such caller shares idempotency keys. Pass a scope option …" (middleware/config.ts:106-112). No key was
 * used or stored; the operator is told to fix a sharing that does not exist.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, proxy } from '../../src/index.js'

describe('an anonymous keyless write behind once({ required: false })', () => {
  it('logs no warning about shared idempotency keys', async () => {
    const origin = { name: 'eu', fetcher: { fetch: async () => new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } }) } }
    const app = new Hono()
    app.post('/contact', once({ required: false }), proxy({ origins: [origin] }))
    const warn = vi.spyOn(console, 'warn')
    const res = await app.request('/contact', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msg":"hi"}' }, env)
    const said = warn.mock.calls.map((args) => String(args[0])).filter((s) => s.includes('shares idempotency keys'))
    warn.mockRestore()
    console.log(`keyless write: ${res.status}; warnings: ${JSON.stringify(said)}`)
    expect(said).toEqual([])
  })
})
