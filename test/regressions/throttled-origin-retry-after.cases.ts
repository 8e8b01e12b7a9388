/**
* Review s31 (last) L-comeBackAt: one origin's Retry-After must not become the request's wait while another origin
 * of the group never asked to wait (D8's rule). The fix applies it at the end of the loop (comeBackAt), but the
 * failover's other exit, "no origin may be sent it now" (shared/failover.ts:33-36: the origin that only failed is
 * out of retry tokens), still takes firstReady(asked) of the origin that asked, and waitedOut() says "Every origin
 * asked to wait (Retry-After)". The client is told Retry-After: 3600 (and the alarm defers its round an hour).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { proxy } from '../../src/index.js'

const maint = { name: 'eu', fetcher: { fetch: async () => new Response('down for maintenance', { status: 503, headers: { 'retry-after': '3600' } }) } }
const flaky = { name: 'us', fetcher: { fetch: async () => Promise.reject(new Error('Network connection lost.')) } }

describe("one origin's Retry-After while the other one only fails", () => {
  it.each(['failover', 'hedge'] as const)('%s: no answer carries the maintenance hour once the failing origin is out of retry tokens', async (strategy) => {
    const app = new Hono()
    app.get('/*', proxy({ origins: [maint, flaky], strategy, hedgeAfterMs: 50, maxAttempts: 3, timeoutMs: 500, deadlineMs: 2000 }))
    const seen: string[] = []
    for (let i = 0; i < 8; i++) {
      const res = await app.request('/accounts/a', {}, env)
      const body = (await res.json()) as { detail?: string }
      seen.push(`${res.status} retry-after=${res.headers.get('retry-after')} ${body.detail}`)
    }
    console.log(seen.join('\n'))
    // us never asked to wait: D8's rule gives no Retry-After from eu's hour (the client's default second).
    expect(seen.filter((s) => s.includes('retry-after=3600'))).toEqual([])
  })
})
