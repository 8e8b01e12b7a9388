import { env } from 'cloudflare:workers'
import { createExecutionContext, runDurableObjectAlarm } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { commitsUnderControl, watch } from '../commits-under-control.js'
import { startOrigins } from '../farm.js'
import { expireLeases, newKey, recordOf, stubFor } from '../helpers.js'

/**
 * Review s33 (answer first) #3: whether an attempt may answer before its commit was decided from its own admit, not
 * from what the object keeps for the key. A relay an earlier attempt left `processing` (its route relayed then, a
 * handler of its own answers now: a deploy in between) stayed due for the alarm; the new attempt answered first, and
 * when its commit never landed the alarm committed the origin's answer: the client held one reply, its duplicates
 * got another. The admit now tells the attempt of such a relay, which then commits first (and completes it).
 */
/**
 * One key on two deploys of a route: `before` relays it (once() in front of proxy()), `after` answers with a handler
 * of the app's own; both through a stable area whose commits the test controls. `send` posts a deposit of 100 to
 * `account` under the key, with an execution context (so an answer may come before its commit).
 */
async function twoDeploys(account: string) {
  const [eu] = await startOrigins(['eu'])
  const control = commitsUnderControl()
  const options = { namespace: () => control.ns, leaseMs: 3000, replayCache: false as const }
  const before = new Hono()
  before.post('/accounts/:id/deposits', once(options), proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover' }))
  const after = new Hono()
  after.post('/accounts/:id/deposits', once(options), (c) => c.json({ local: true }, 201))
  const key = newKey()
  const send = (app: Hono) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env, createExecutionContext())
  return { eu: eu!, control, before, after, key, send }
}

describe("an earlier attempt's relay still due, then a handler of the app's own (review s33 answer-first #3)", () => {
  it('the attempt commits before it answers, so no client holds a reply its duplicates do not get', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { eu, control, before, after, key, send } = await twoDeploys('sr1')
    // The first deploy's Worker: proxy() answers, then the Worker dies before its commit (the relay stays processing).
    control.set('drop')
    expect((await send(before)).status).toBe(201)
    await expireLeases(key)
    // The next deploy's Worker takes the key over (its admit carries no relay) and dies before its commit.
    const pending = watch(Promise.resolve(send(after)))
    await control.sent(2)
    await scheduler.wait(20)
    expect(pending.settled()).toBe(false) // it waits for its commit: the object keeps a request of this key to resend
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 201 })
    control.set('pass')
    const duplicate = await send(after)
    expect(duplicate.headers.get('idempotent-replayed')).toBe('true')
    expect(await duplicate.json()).toMatchObject({ balance: 100 }) // the origin's answer, the only one any client got
    expect((await eu.stats()).balances).toEqual({ sr1: 100 })
    error.mockRestore()
  })

  it("a handler of its own that takes over a key whose relay is still due completes that relay with its commit", async () => {
    const { eu, control, before, after, key, send } = await twoDeploys('sr2')
    control.set('drop')
    expect((await send(before)).status).toBe(201)
    await expireLeases(key)
    control.set('pass')
    const answer = await send(after)
    expect(await answer.json()).toEqual({ local: true })
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 201 }) // committed before it answered
    // The alarm has nothing left to resend: the relay was completed with the commit.
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const duplicate = await send(after)
    expect(await duplicate.json()).toEqual({ local: true })
  })
})
