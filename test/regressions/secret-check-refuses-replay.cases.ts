// Review s32 (diff), finding 1. ceac2af moved proxy()'s "signing secret unusable" refusal in front of once()'s admit
// (src/middleware/admit.ts: secretProblem before the RPC). The admit is also what answers a *duplicate*: a retry of a
// key whose request was applied and committed. While the secret is unset (a rotation half done, a deploy whose
// secret name changed), such a retry used to get its recorded answer (nothing is sent, so no secret is needed); now it
// gets 500 misconfigured, which docs/errors.md says means "nothing ran", retry "no". The request did run: a client
// that believes the answer and sends its deposit again under a new key once the secret is back deposits twice.
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { depositUnder, gatewayDeposit } from './signing-secret.js'
import { list } from '../origin-adapter/domains.js'

describe('a retry of an applied, committed key while the signing secret is unset', () => {
  it('a failover proxy() route: the retry gets the recorded 201, not 500 misconfigured ("nothing ran")', async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false }))
    app.post('/accounts/*', proxy({ origins: list([eu!]), strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' }, timeoutMs: 1000, deadlineMs: 3000 }))
    const key = newKey()
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const send = depositUnder(app, account, key)
    expect((await send(true)).status).toBe(201)
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const retry = await send(false)
    error.mockRestore()
    const body = await retry.text()
    expect({ status: retry.status, replayed: retry.headers.get('idempotent-replayed') }, body).toEqual({ status: 201, replayed: 'true' })
    expect((await eu!.stats()).balances[account]).toBe(5)
  })

  it('a gateway replicate route: the retry gets the recorded 201, not 500 misconfigured ("nothing ran")', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const send = gatewayDeposit([eu!, us!], account)
    const deposit = (secret: string | undefined) => send(key, secret)
    expect((await deposit(env.TEST_SIGNING_SECRET)).status).toBe(201)
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const retry = await deposit(undefined)
    error.mockRestore()
    const body = await retry.text()
    expect({ status: retry.status, replayed: retry.headers.get('idempotent-replayed') }, body).toEqual({ status: 201, replayed: 'true' })
  })
})

describe('a retry of a key an earlier attempt sent, while the signing secret is unset', () => {
  it('is told 502 origin-failed, retryable (it may have been applied), not 500 misconfigured ("nothing ran")', async () => {
    // The first attempt reaches an origin that answers 503 (nothing final): the key is given back. (An origin by
    // fetcher is not relayed, so its sends are not counted: the retry's attempt number says an earlier one ran.)
    let sent = 0
    const busy = { name: 'eu', fetcher: { fetch: async () => (sent++, new Response('busy', { status: 503 })) } }
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false }))
    app.post('/accounts/*', proxy({ origins: [busy], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' }, maxAttempts: 1, timeoutMs: 1000, deadlineMs: 3000 }))
    const key = newKey()
    const send = (withSecret: boolean) =>
      app.request(
        '/accounts/a/deposits',
        { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":5}' },
        { ONCE: env.ONCE, ...(withSecret ? { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET } : {}) },
      )
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      expect((await send(true)).status).toBeGreaterThanOrEqual(500)
      expect(sent).toBe(1)
      const retry = await send(false)
      expect({ status: retry.status, ...((await retry.json()) as object) }).toMatchObject({ status: 502, type: 'https://hono-once.dev/problems/origin-failed', retryable: true, idempotency_key: key })
      // A new key with the secret unset: nothing was ever sent or kept, so "nothing ran" is the truth.
      const fresh = await app.request('/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":5}' }, { ONCE: env.ONCE })
      expect(await fresh.json()).toMatchObject({ type: 'https://hono-once.dev/problems/misconfigured', retryable: false })
    } finally {
      error.mockRestore()
    }
  })
})
