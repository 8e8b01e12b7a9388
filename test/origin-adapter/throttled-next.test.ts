/**
 * An origin whose retry tokens are spent is skipped, not the end of the request: with two dead origins and a
 * healthy one at low traffic, every request is answered by the healthy one.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { proxy } from '../../src/index.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ok = (from: string) => new Response(JSON.stringify({ from }), { status: 200, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
const down = (name: string) => ({ name, fetcher: { fetch: async () => Promise.reject(new Error('connection refused')) } })
const up = (name: string) => ({ name, fetcher: { fetch: async () => ok(name) } })

describe('a throttled origin does not end the request while another has tokens', () => {
  it.each(['failover', 'hedge'] as const)('%s: two dead origins, one healthy, one request per cooldown', async (strategy) => {
    const app = new Hono()
    app.get('/*', proxy({ origins: [down('eu'), down('us'), up('ap')], strategy, hedgeAfterMs: 1000, breaker: { failures: 2, cooldownMs: 100 } }))
    const statuses: number[] = []
    for (let i = 0; i < 14; i++) {
      statuses.push((await app.request('/accounts/a', {}, env)).status)
      await sleep(120)
    }
    expect(statuses).toEqual(Array(14).fill(200))
  })
})
