/**
 * Review s31 (proxy), finding P2: when one origin refuses a write for good (the receiver's 500 handler-failed,
 * `retryable: false`) and another origin's attempt at the same request ends unknown (a timeout: it may have
 * applied it), proxy() passes the refusal on as the client's answer and once() gives the key back, as if no
 * origin had applied the request. The client is told "nothing applied, do not retry" while the deposit happened.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey, recordOf } from '../helpers.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The receiver's refusal for good: the app threw on this request in this region. */
const handlerFailed = () =>
  new Response(
    JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', title: 'The handler threw; nothing was applied', status: 500, detail: 'ledger exploded', retryable: false }),
    { status: 500, headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' } },
  )

function scene(strategy: 'failover' | 'hedge') {
  const applied: string[] = []
  // eu: its app throws on this request. us: applies it (one shared database), but its answer comes after timeoutMs.
  const eu = { name: 'eu', fetcher: { fetch: async () => handlerFailed() } }
  const us = {
    name: 'us',
    fetcher: {
      fetch: async (req: Request) => {
        applied.push(req.headers.get('once-request-id') ?? '')
        await sleep(600)
        return new Response('{"balance":100}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
      },
    },
  }
  const app = new Hono()
  app.use('/*', once({ replayCache: false }))
  app.post('/*', proxy({ origins: [eu, us], strategy, timeoutMs: 200, deadlineMs: 1000, maxAttempts: 2, hedgeAfterMs: 50 }))
  const key = newKey()
  const post = () => app.request('/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
  return { applied, post, key }
}

describe('a refusal for good passed on while another origin may have applied the request', () => {
  for (const strategy of ['failover', 'hedge'] as const) {
    it(`${strategy}: the client is not told retryable: false when an attempt elsewhere timed out`, async () => {
      const { applied, post, key } = scene(strategy)
      const res = await post()
      const body = (await res.json()) as { retryable?: boolean; type?: string }
      console.log(strategy, res.status, res.headers.get('once-origin'), res.headers.get('server-timing'), body.type, 'retryable:', body.retryable, 'us applied:', applied.length, 'record:', (await recordOf(key))?.state)
      expect(applied).toHaveLength(1) // the deposit may well have happened at us
      // An unknown outcome is a retryable 502/504 (docs/dispatch.md: "a timeout or a lost answer is unknown"), never a final refusal.
      expect(body.retryable).not.toBe(false)
    })
  }
})
