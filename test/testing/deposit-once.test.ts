/**
 * The testing kit's example, as docs/testing.md ("Testing your app") shows it: a user's own route (the bank
 * example's `POST /accounts/:id/deposits`, `once()` in front of a ledger) tested in workerd, proving the
 * deposit is applied once across a Worker that died mid-handler; and a `proxy()` route to an in-process
 * origin that goes down, gets slow and loses an answer after applying.
 */
import { env } from 'cloudflare:workers'
import { SELF } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import app from '../../examples/bank/worker.js'
import { memoryStore, onceReceiver } from '../../src/origin/index.js'
import { once, proxy } from '../../src/index.js'
import { crashedWorker, endLease, expireKey, keyRecord, runAlarm, settledRecord, testOrigin } from '../../src/testing.js'

const deposit = (account: string, key: string, amount = 100) =>
  new Request(`http://bank.test/accounts/${account}/deposits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
    body: JSON.stringify({ amount }),
  })
const balance = async (account: string) => ((await (await app.request(`/accounts/${account}`, {}, env)).json()) as { balance: number }).balance

describe('testing your app with hono-once/testing', () => {
  it('settledRecord: through SELF.fetch (answered before its commit lands) the record is read once the commit landed', async () => {
    const account = `self-${crypto.randomUUID()}`
    const key = `dep-${crypto.randomUUID()}`
    const res = await SELF.fetch(deposit(account, key, 5))
    expect(res.status).toBe(201)
    expect(await settledRecord(env.ONCE, key)).toMatchObject({ state: 'committed', attempt: 1, reply: { status: 201 } })
    // A key still running under a live lease is named after the timeout.
    await crashedWorker(env.ONCE, `${key}-stuck`, deposit(account, `${key}-stuck`))
    await expect(settledRecord(env.ONCE, `${key}-stuck`, { timeoutMs: 50 })).rejects.toThrow(/still running \(attempt 1\) after 50 ms/)
    await endLease(env.ONCE, `${key}-stuck`)
    expect(await settledRecord(env.ONCE, `${key}-stuck`)).toMatchObject({ state: 'in_flight', attempt: 1 }) // a Worker that died
  })

  it('the deposit applies once across a Worker that died mid-handler', async () => {
    const account = `alice-${crypto.randomUUID()}`
    const key = `dep-${crypto.randomUUID()}`

    // A Worker admitted the deposit and died before its handler finished: no commit, no release.
    expect((await crashedWorker(env.ONCE, key, deposit(account, key))).kind).toBe('new')
    const stuck = await keyRecord(env.ONCE, key)
    expect(stuck).toMatchObject({ state: 'in_flight', attempt: 1, reply: null })
    expect(stuck!.leaseUntil).toBeGreaterThan(Date.now())

    // Its lease runs out; the client's retry takes the key over and runs the deposit, once.
    expect(await endLease(env.ONCE, key)).toBe(true)
    const retried = await app.request(deposit(account, key), undefined, env)
    expect(retried.status).toBe(201)
    const body = await retried.text()
    const record = await keyRecord(env.ONCE, key)
    expect(record).toMatchObject({ state: 'committed', attempt: 2, requestId: stuck!.requestId, leaseUntil: null })
    expect(record!.reply).toMatchObject({ status: 201, text: body })

    // Another retry gets the stored reply; the balance moved once.
    const replayed = await app.request(deposit(account, key), undefined, env)
    expect(replayed.headers.get('idempotent-replayed')).toBe('true')
    expect(await replayed.text()).toBe(body)
    expect(await balance(account)).toBe(100)

    // After the TTL the alarm deletes the record.
    expect(await expireKey(env.ONCE, key)).toBe(true)
    expect(await runAlarm(env.ONCE, key)).toBe(true)
    expect(await keyRecord(env.ONCE, key)).toBeNull()
  })

  it('a proxy() route to an in-process origin: down, slow, an answer lost after applying, still applied once', async () => {
    // The origin: the receiver half in front of a ledger it applies each request id to once.
    const ledger = new Map<string, number>()
    const originApp = new Hono().post('/accounts/:id/deposits', onceReceiver({ store: memoryStore() }), async (c) => {
      const id = c.req.param('id')
      ledger.set(id, (ledger.get(id) ?? 0) + (await c.req.json<{ amount: number }>()).amount)
      return c.json({ id, balance: ledger.get(id) }, 201)
    })
    const eu = testOrigin('eu', (request) => originApp.fetch(request))
    const us = testOrigin('us', (request) => originApp.fetch(request)) // one shared database: failover
    const edge = new Hono().post('/accounts/:id/deposits', once(), proxy({ origins: [eu.origin, us.origin], strategy: 'failover', timeoutMs: 1000 }))
    const send = (key: string) => edge.request(deposit('bob', key, 10), undefined, env)

    eu.down()
    expect((await send(`p-${crypto.randomUUID()}`)).status).toBe(201) // failed over to us
    expect(eu.refused).toBeGreaterThan(0)
    eu.up()

    eu.dropAnswers(1)
    const key = `p-${crypto.randomUUID()}`
    const res = await send(key) // eu applies, its answer is lost; the resend to us (same request id) is answered from the record
    expect(res.status, await res.clone().text()).toBe(201)
    expect(ledger.get('bob')).toBe(20)
    expect(eu.handled + us.handled).toBe(3)

    eu.slow(50)
    expect((await send(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(ledger.get('bob')).toBe(20)
    expect(eu.faults()).toMatchObject({ down: false, delayMs: 50, dropAfterApply: 0 })
  })
})
