/**
 * A signed read (never stored or resent) forwards a header whose value the signature cannot cover (a browser's
 * raw UTF-8 cookie) uncovered, as before, rather than refusing every read of that user; only a header the
 * receiver requires covered (Content-Type) refuses it.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { proxy } from '../../src/index.js'

describe('a signed GET with a non-ASCII cookie', () => {
  it('is answered, not refused 400', async () => {
    const origin = { name: 'eu', fetcher: { fetch: async () => new Response('{"balance":1}', { headers: { 'content-type': 'application/json' } }) } }
    const app = new Hono()
    app.get('/*', proxy({ origins: [origin], secret: { env: 'TEST_SIGNING_SECRET' } }))
    // 'São' as a browser sends it: the UTF-8 bytes, read by the runtime one byte per char.
    const cookie = `session=abc; city=${String.fromCharCode(...new TextEncoder().encode('São Paulo'))}`
    const res = await app.request('/accounts/a', { headers: { cookie } }, env)
    expect(res.status).toBe(200)
  })
})
