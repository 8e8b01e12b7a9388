/**
 * Under hedge, an origin's Retry-After that ends within the deadline is waited out, and the request is sent
 * again.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { proxy } from '../../src/index.js'

describe('hedge: a wait within the deadline', () => {
  it('is waited out, then the request is sent again', async () => {
    let n = 0
    const origin = {
      name: 'eu',
      fetcher: { fetch: async () => (++n === 1 ? new Response('slow down', { status: 429, headers: { 'retry-after': '1' } }) : new Response('{}', { headers: { 'content-type': 'application/json' } })) },
    }
    const app = new Hono()
    app.get('/*', proxy({ origins: [origin], strategy: 'hedge', deadlineMs: 4000 }))
    const res = await app.request('/accounts/a', {}, env)
    expect(n).toBe(2)
    expect(res.status).toBe(200)
  })
})
