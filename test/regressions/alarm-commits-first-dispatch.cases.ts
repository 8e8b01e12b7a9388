/**
 * Review s31 (proxy), finding P1: a handler that dispatch()es two requests (test/origin-adapter/relay.test.ts
 * "two dispatch() calls in one handler" shows it as supported) dies after the first. The relay the first
 * dispatch() recorded carries the logical request id, so the alarm resends that first leg, commits ITS answer as
 * the key's reply, and the client's retry replays it: the second leg never runs, and the client is told 201.
 */
import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { dispatch, once, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { startOrigins } from '../farm.js'
import { diesAfterAdmit, expireLeases, newKey, recordOf, stubFor } from '../helpers.js'

describe('alarm resend of a handler that dispatch()es two requests', () => {
  it('a Worker dying between the two legs: the retry must not be told 201 with the second leg never applied', async () => {
    const [eu] = await startOrigins(['eu'])
    const options: ProxyOptions = { origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }
    const ns = diesAfterAdmit()
    let firstLegDone!: () => void
    const reached = new Promise<void>((r) => (firstLegDone = r))
    const app = new Hono()
    app.post('/transfer', once({ namespace: () => ns, leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false }), async (c) => {
      const base = new URL(c.req.url).origin
      const out = await dispatch(c, new Request(`${base}/accounts/from/deposits`, { method: 'POST', body: '{"amount":3}' }), options)
      if (c.req.header('x-die') === '1') {
        firstLegDone()
        await new Promise(() => {}) // the isolate is evicted here: the handler never goes on
      }
      const into = await dispatch(c, new Request(`${base}/accounts/to/deposits`, { method: 'POST', body: '{"amount":7}' }), options)
      return c.json({ out: out.status, into: await into.json() }, 201)
    })
    const key = newKey()
    const send = (die: boolean) =>
      app.request('/transfer', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, ...(die ? { 'x-die': '1' } : {}) }, body: '{}' }, env)
    void send(true) // never answers: the Worker died
    await reached
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    // What the alarm did: committed the first leg's answer as the transfer's reply.
    console.log('record after the alarm:', JSON.stringify(await recordOf(key), (k, v) => (k === 'body' || k === 'headers' ? undefined : v)))
    // The client comes back with the same key (same body, fingerprint matches).
    const res = await send(false)
    const text = await res.text()
    console.log('client retry:', res.status, res.headers.get('idempotent-replayed'), text)
    const balances = (await eu!.stats()).balances
    // A transfer answered 201 must have made both legs; the route's own reply shape, not a sub-request's.
    expect.soft(JSON.parse(text)).toHaveProperty('into')
    expect(balances).toEqual({ from: 3, to: 7 })
  })

  it("the docs' own dispatch() example (audit after a good answer): a Worker dying before audit() leaves the audit never made, and the retry is told it succeeded", async () => {
    const [eu] = await startOrigins(['eu'])
    const accounts: ProxyOptions = { origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }
    const audited: string[] = []
    let dispatched!: () => void
    const reached = new Promise<void>((r) => (dispatched = r))
    const app = new Hono()
    // As in docs/dispatch.md and dispatch()'s JSDoc.
    app.post('/accounts/:id/deposits', once({ namespace: () => diesAfterAdmit(), leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false }), async (c) => {
      const res = await dispatch(c, undefined, accounts)
      if (c.req.header('x-die') === '1') {
        dispatched()
        await new Promise(() => {}) // evicted before audit()
      }
      if (res.ok) audited.push(c.var.once.requestId)
      return res
    })
    const key = newKey()
    const send = (die: boolean) =>
      app.request('/accounts/au/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...(die ? { 'x-die': '1' } : {}) }, body: '{"amount":5}' }, env)
    void send(true)
    await reached
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const retry = await send(false)
    console.log('retry:', retry.status, retry.headers.get('idempotent-replayed'), 'audited:', audited.length, 'balances:', JSON.stringify((await eu!.stats()).balances))
    // A 2xx for the key means the handler ran to the end: the deposit and its audit record.
    expect(retry.status).toBe(201)
    expect(audited).toHaveLength(1)
  })
})
