/**
 * Under hedge, a refusal from one origin (handler-failed) does not end the request while another copy is in
 * flight: the copy may apply it, and then its answer is the client's, never "nothing was applied".
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey } from '../helpers.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('hedge: a refusal while another copy is applying', () => {
  it('the client is not told "nothing was applied" while a copy applies it', async () => {
    let applied = 0
    // eu's app throws (its own downstream is down) after 60 ms; us (sharing the store) applies it in 100 ms.
    const eu = {
      name: 'eu',
      fetcher: {
        fetch: async () => (
          await sleep(60),
          new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', status: 500, retryable: false }), {
            status: 500,
            headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' },
          })
        ),
      },
    }
    const us = { name: 'us', fetcher: { fetch: async () => (await sleep(100), applied++, new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })) } }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [eu, us], strategy: 'hedge', hedgeAfterMs: 20 }))
    const res = await app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    await sleep(150)
    expect(applied).toBe(1)
    // It was applied (at us): the client must not get "nothing was applied, do not retry".
    expect(res.status).toBe(201)
  })
})
