/**
 * A standby origin's retry tokens come back with time (review s31, P5): an origin that is not preferred gets no
 * first attempts while the preferred one is healthy, so tokens given back only by its own successes never came
 * back after an outage of its own, and when the preferred origin then failed, the request was not failed over
 * to it (502 with a healthy origin in the group).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { originGroup, proxyWith } from '../../src/origin-adapter/dispatch.js'
import { RetryBudget } from '../../src/shared/retry-budget.js'

const ok = (from: string) => new Response(JSON.stringify({ from }), { status: 200, headers: { 'content-type': 'application/json' } })

afterEach(() => vi.useRealTimers())

describe('retry tokens of a standby origin', () => {
  it('come back with time, so the next failover reaches it once it is healthy again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    let euDown = true
    let usDown = true
    const eu = { name: 'eu', fetcher: { fetch: async () => (euDown ? Promise.reject(new Error('connection refused')) : ok('eu')) } }
    const us = { name: 'us', fetcher: { fetch: async () => (usDown ? new Response('overloaded', { status: 503 }) : ok('us')) } }
    // Short cooldowns: the breakers are out of the picture.
    const group = originGroup({ origins: [eu, us], strategy: 'hedge', hedgeAfterMs: 1000, breaker: { failures: 5, cooldownMs: 1 } }, 'proxy()')
    const app = new Hono()
    app.get('/*', proxyWith(group))
    const get = () => app.request('/accounts/a', {}, env)
    // An outage of both regions: a handful of reads fail, and spend us's tokens.
    for (let i = 0; i < 8; i++) await get()
    euDown = false
    usDown = false
    for (let i = 0; i < 20; i++) expect((await get()).headers.get('once-origin')).toBe('eu')
    // Right after the outage the throttle holds (that is what it is for) ...
    expect(group.health.canRetry('us')).toBe(false)
    // ... and some seconds later it has let go, though us was sent nothing meanwhile.
    vi.setSystemTime(Date.now() + 11_000)
    expect(group.health.canRetry('us')).toBe(true)
    euDown = true
    const res = await get()
    expect(res.status).toBe(200)
    expect(res.headers.get('once-origin')).toBe('us')
  })

  it('a host failing every attempt is retried at most about once every two seconds (the refill is the only way back)', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const budget = new RetryBudget()
    let retries = 0
    // A minute of a host failing every attempt, asked as often as a busy client would (every 10 ms).
    for (let t = 0; t < 60_000; t += 10) {
      vi.setSystemTime(t)
      if (budget.canRetry('h')) {
        retries++
        budget.onFailure('h')
      }
    }
    // The first 5 retries spend the bucket's top half; then the refill (0.5/s) allows one every 2 s.
    expect(retries).toBeGreaterThanOrEqual(30)
    expect(retries).toBeLessThanOrEqual(36)
  })

  it('refuses a refill that is negative or not finite, naming it', () => {
    expect(() => new RetryBudget({ refillPerSecond: -1 })).toThrow(/refillPerSecond/)
    expect(() => new RetryBudget({ refillPerSecond: Number.POSITIVE_INFINITY })).toThrow(/refillPerSecond/)
    expect(() => new RetryBudget({ refillPerSecond: Number.NaN })).toThrow(/refillPerSecond/)
  })
})
