// Review s32 (gateway): docs/errors.md says a 500 `misconfigured` (among its causes "a missing signing secret") means
// "nothing ran", retry "no". On a `replicate` route (the one `npx hono-once init` writes) the ordered write was
// admitted into its domain's log before proxy() found the secret missing, and the log entry is applied later (by the
// next write of the domain, or the object's alarm) once the secret is set. A client that believed "nothing ran" and
// sent the deposit again under a new key gets it applied twice.
import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { gatewayDeposit } from './signing-secret.js'
import { once, proxy } from '../../src/index.js'
import { list, stubOf } from '../origin-adapter/domains.js'

describe('a write answered 500 misconfigured (missing signing secret) on a replicate route', () => {
  it('is never applied afterwards ("nothing ran", docs/errors.md)', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const deposit = gatewayDeposit([eu!, us!], account)
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      // The operator has not set the secret yet: the answer says nothing ran and not to retry.
      const first = await deposit(newKey(), undefined)
      expect(first.status).toBe(500)
      expect(await first.json()).toMatchObject({ type: 'https://hono-once.dev/problems/misconfigured', retryable: false })
      // The secret is set; the client, told nothing ran, sends its deposit again (a new logical call: a new key).
      const second = await deposit(newKey(), env.TEST_SIGNING_SECRET)
      expect(second.status).toBe(201)
    } finally {
      error.mockRestore()
    }
    // One deposit of 5 was meant: the 500 one must not have been applied too.
    const stats = await eu!.stats()
    expect(stats.balances[account]).toBe(5)
  })
})

describe('a precondition proxy() checks is checked before once() stores anything (the kind)', () => {
  it.each([
    ['unset', {}],
    ['too short', { ONCE_SIGNING_SECRET: 'short' }],
  ])('an ordered route with its signing secret %s: 500 misconfigured, and no slot, record or log entry is kept', async (_, secretEnv) => {
    const [r1] = await startOrigins(['r1'])
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list([r1!]), strategy: 'replicate', secret: { env: 'ONCE_SIGNING_SECRET' } }))
    const domain = `sec-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const res = await app.request(
        `/accounts/${domain}/deposits`,
        { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":5}' },
        { ONCE: env.ONCE, ...secretEnv },
      )
      expect(res.status).toBe(500)
      expect(await res.json()).toMatchObject({ type: 'https://hono-once.dev/problems/misconfigured', detail: expect.stringContaining('env.ONCE_SIGNING_SECRET') })
    } finally {
      error.mockRestore()
    }
    const kept = await runInDurableObject(stubOf(domain), (_o, s) => ({
      log: s.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM log').one().n,
      records: s.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM records').one().n,
    }))
    expect(kept).toEqual({ log: 0, records: 0 })
  })
})
