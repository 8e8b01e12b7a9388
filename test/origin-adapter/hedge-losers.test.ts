/**
 * Under hedge, an attempt launched after the winner (a healthy hedge target cut off by the preferred origin's
 * late answer) counts nothing against its origin: its breaker stays closed and its retry tokens stay, so when
 * the preferred origin dies the request fails over to it.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { originGroup, proxyWith } from '../../src/origin-adapter/dispatch.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ok = (from: string) => new Response(JSON.stringify({ from }), { status: 200, headers: { 'content-type': 'application/json' } })

describe('hedge: a healthy hedge target that loses races', () => {
  it('keeps its breaker closed and its retry tokens, and answers when the preferred origin dies', async () => {
    let euDown = false
    // eu: the near region, 50 ms (a tail above the hedge delay); us: far, 100 ms. Both healthy.
    const eu = { name: 'eu', fetcher: { fetch: async () => (euDown ? Promise.reject(new Error('connection refused')) : (await sleep(50), ok('eu'))) } }
    const us = { name: 'us', fetcher: { fetch: async () => (await sleep(100), ok('us')) } }
    const group = originGroup({ origins: [eu, us], strategy: 'hedge', hedgeAfterMs: 20 }, 'proxy()')
    const app = new Hono()
    app.get('/*', proxyWith(group))
    for (let i = 0; i < 8; i++) {
      const res = await app.request('/accounts/a', {}, env)
      expect(res.status).toBe(200)
      expect(res.headers.get('once-origin')).toBe('eu')
    }
    const health = group.health.report(['us'])[0]!
    // us answered nothing wrong: it was only cut off because eu answered first.
    expect.soft(health.breaker).toBe('closed')
    expect.soft(group.health.canRetry('us')).toBe(true)
    // eu dies: the request must fail over to us.
    euDown = true
    const res = await app.request('/accounts/a', {}, env)
    expect(res.status).toBe(200)
  })
})
