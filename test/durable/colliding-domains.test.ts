import { env } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { domainState, domainStub, reportNow, runAlarmOnce, statusStub } from './domain-objects.js'

/**
 * Issue 15 item 20: two ordered routes with DIFFERENT origins whose domain names collide once (the gateway
 * allows `/accounts/:id` → a1,a2 and `/carts/:id` → b1, both `param:id`). One shared name must not make the directory link
 * the two sets (they share no origin by name and URL): the carts origins are never pushed to a quiet accounts domain.
 */

describe('two routes with different origins sharing one domain name (issue 15 item 20)', () => {
  it('do not merge: a quiet accounts domain is never pushed the carts origins, and b1 never applies an accounts write', async () => {
    const [a1, a2, b1] = await startOrigins(['ra1', 'ra2', 'rb1'])
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: [a1!, a2!].map(({ name, url }) => ({ name, url })), strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ackQuorum: 1 }))
    app.use('/carts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/carts/*', proxy({ origins: [{ name: b1!.name, url: b1!.url }], strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ackQuorum: 1 }))
    const post = (path: string) =>
      app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1 }) }, env)
    const tag = crypto.randomUUID().slice(0, 6)
    const [quiet, shared] = [`q-${tag}`, `s-${tag}`]
    for (let k = 0; k < 2; k++) expect((await post(`/accounts/${quiet}/deposits`)).status).toBe(201)
    expect((await post(`/accounts/${shared}/deposits`)).status).toBe(201)
    for (const d of [quiet, shared]) {
      await eventually(() => domainState(d), (s) => s?.replicas.every((r) => r.state === 'active' && r.acked === s.head) ?? false)
      await reportNow(domainStub(d))
    }
    // One cart happens to have the same id as an account.
    await post(`/carts/${shared}/items`)
    await reportNow(domainStub(shared))
    await runAlarmOnce(statusStub())
    const q = await domainState(quiet)
    expect.soft(q?.replicas.map((r) => r.name), 'the quiet accounts domain keeps its own origins').toEqual(['ra1', 'ra2'])
    await runAlarmOnce(domainStub(quiet))
    expect((await b1!.stats()).applied.filter((a) => a.domain === quiet), 'the carts origin applied accounts writes').toEqual([])
  })
})
