/**
 * Review s31 (proxy), finding P4: dispatch() inside a handler commits an applied answer with a non-final status
 * (an origin's recorded 5xx, `Once-Applied: ?1`; a `reply-lost`) through c.var.once.commit() before the handler
 * has decided its answer. The handler then answers the client something else (its own 202), which once() keeps
 * silently (CommitPoint.finish returns in phase 'final' on a final status): the client holds a 202 the record
 * does not, and its retry with the same key replays the origin's 500.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { dispatch, once, type ProxyOptions } from '../../src/index.js'
import { newKey } from '../helpers.js'

describe('dispatch() in a handler, an applied 5xx', () => {
  it("the client's answer and its retry's replay are the same", async () => {
    let sends = 0
    // The origin ran the request; the app recorded a 500 for it (a downstream it calls failed after the write).
    const eu = {
      name: 'eu',
      fetcher: { fetch: async () => (sends++, new Response('{"error":"notify failed"}', { status: 500, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })) },
    }
    const options: ProxyOptions = { origins: [eu], strategy: 'failover' }
    const app = new Hono()
    app.post('/orders', once({ replayCache: false }), async (c) => {
      const res = await dispatch(c, undefined, options)
      // The app's own answer: the order is in; the notification will be retried by a job.
      if (res.status >= 500) return c.json({ accepted: true }, 202)
      return res
    })
    const key = newKey()
    const post = () => app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"sku":1}' }, env)
    const first = await post()
    const retry = await post()
    console.log('first:', first.status, await first.clone().text(), '| retry:', retry.status, retry.headers.get('idempotent-replayed'), await retry.clone().text(), '| sends:', sends)
    expect(retry.status).toBe(first.status)
  })
})
