/**
 * Review s31 (diff), D1: attempt.ts refused() passes a refusal for good on only when no attempt *of this
 * invocation* ended unknown (timeout/network/aborted). An origin that answers 409 `in-flight` (its receiver is
 * applying this very Once-Request-Id right now, from an earlier attempt whose answer was lost) is not counted as
 * "may have applied". The client follows the first answer (a retryable 502/504, the fix of P2), retries with the
 * same key, and this time gets the other origin's refusal with `retryable: false`, "No origin applied the request",
 * while the slow origin finishes and applies the deposit.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { memoryStore, onceReceiver, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'
import { newKey, recordOf } from '../helpers.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The receiver's refusal for good: the app threw on this request in this region. */
const handlerFailed = () =>
  new Response(
    JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', title: 'The handler threw; nothing was applied', status: 500, detail: 'ledger exploded', retryable: false }),
    { status: 500, headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' } },
  )

describe('a refusal for good passed on while another origin is still applying the request', () => {
  it('the retry the client was told to make is answered retryable: false, and the deposit happens anyway', async () => {
    // us: a real onceReceiver whose handler is slow (1.5 s); a duplicate meanwhile waits 100 ms, then gets 409 in-flight.
    const balances = new Map<string, number>()
    const usApp = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    usApp.use('/accounts/*', onceReceiver({ store: memoryStore(), waitMs: 100 }))
    usApp.post('/accounts/:id/deposits', async (c) => {
      const { amount } = await c.req.json<{ amount: number }>()
      await sleep(1500)
      c.var.receiver.tx.onCommit(() => balances.set(c.req.param('id'), (balances.get(c.req.param('id')) ?? 0) + amount))
      return c.json({ deposited: amount }, 201)
    })
    const eu = { name: 'eu', fetcher: { fetch: async () => handlerFailed() } }
    const us = { name: 'us', fetcher: { fetch: async (req: Request) => usApp.request(new Request(req, { signal: null })) } }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [eu, us], strategy: 'failover', timeoutMs: 300, deadlineMs: 800, maxAttempts: 3 }))
    const key = newKey()
    const post = () => app.request('/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)

    const first = await post()
    const firstBody = (await first.json()) as { retryable?: boolean }
    console.log('first:', first.status, first.headers.get('server-timing'), 'retryable:', firstBody.retryable)
    expect(firstBody.retryable).not.toBe(false) // the P2 fix: a timeout at us makes it retryable

    // The client retries at once, as told.
    const retry = await post()
    const body = (await retry.json()) as { retryable?: boolean; type?: string; detail?: string }
    await sleep(2000) // us's first run finishes
    console.log('retry:', retry.status, retry.headers.get('once-origin'), retry.headers.get('server-timing'), body.type, 'retryable:', body.retryable, '| us balance:', balances.get('a'), '| record:', (await recordOf(key))?.state)
    expect(balances.get('a')).toBe(100) // the deposit happened at us
    // ...so the client must not be told "nothing applied, do not retry".
    expect(body.retryable).not.toBe(false)
  })

})
