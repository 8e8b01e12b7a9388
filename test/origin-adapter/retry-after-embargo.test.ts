/**
 * A 503 with a long Retry-After keeps the origin last in line for every request of the isolate, never out of
 * it: with no other origin, the next request (another caller, another path) is sent, and answered once the
 * origin is back.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey } from '../helpers.js'

const maintenance = () => new Response('down for maintenance', { status: 503, headers: { 'retry-after': '3600' } })
const ok = (status: number) => new Response('{}', { status, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })

describe('a long 503 Retry-After', () => {
  it('GET (hedge, the default for reads): the origin is asked again once it is back', async () => {
    const sends: string[] = []
    const origin = { name: 'eu', fetcher: { fetch: async (req: Request) => (sends.push(new URL(req.url).pathname), sends.length === 1 ? maintenance() : ok(200)) } }
    const app = new Hono()
    app.get('/*', proxy({ origins: [origin] }))
    await app.request('/reports/big', {}, env)
    // The origin is back (it was one path's 503, or a 30-second deploy): another caller, another path.
    const res = await app.request('/accounts/a', {}, env)
    expect(sends).toContain('/accounts/a')
    expect(res.status).toBe(200)
  })

  it('POST (failover, behind once()): a write after the origin is back is sent', async () => {
    let n = 0
    const origin = { name: 'eu', fetcher: { fetch: async () => (++n === 1 ? maintenance() : ok(201)) } }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [origin], strategy: 'failover' }))
    const post = () => app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    await post()
    const before = n
    const res = await post()
    expect(n).toBeGreaterThan(before)
    expect(res.status).toBe(201)
  })
})
