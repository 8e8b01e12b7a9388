import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { domainObject, domainState, domainStub, runAlarmOnce } from './domain-objects.js'

/** Issue 15 item 20: a replica removed by a push keeps its progress aside; added back at the same URL, it resumes there. */

describe('a replica removed and added back by pushes (issue 15 item 20)', () => {
  it('that had applied every entry of a quiet domain whose log is pruned is active again, not stale', async () => {
    const origins = await startOrigins(['x1', 'x2', 'x3'])
    const replicas = origins.map(({ name, url }) => ({ name, url }))
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: replicas, strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ackQuorum: 1, logRetentionMs: 0 }))
    const domain = `readd-${crypto.randomUUID().slice(0, 6)}`
    for (let k = 0; k < 3; k++) {
      const res = await app.request(`/accounts/${domain}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
      expect(res.status).toBe(201)
    }
    await eventually(() => domainState(domain), (s) => s?.replicas.every((r) => r.acked === 3) ?? false)
    await runAlarmOnce(domainStub(domain)) // prunes what all three acknowledged
    expect((await domainState(domain))?.prunedThrough).toBe(3)
    expect((await origins[2]!.stats()).applied.filter((a) => a.domain === domain).length).toBe(3) // x3 has everything
    const stub = domainStub(domain) as unknown as StableAreaApi
    const t = Date.now() + 10
    await stub.adoptReplicaSets([{ domain, origins: replicas.slice(0, 2), learnedAt: t }]) // e.g. a straggler's change spread
    await stub.adoptReplicaSets([{ domain, origins: replicas, learnedAt: t + 1 }]) // and undone
    await runAlarmOnce(domainStub(domain))
    expect((await domainState(domain))?.replicas.find((r) => r.name === 'x3')).toMatchObject({ state: 'active' })
  })
  it('removed while the alarm is feeding it a batch, it is sent nothing more of that batch', async () => {
    const origins = await startOrigins(['y1', 'y2', 'y3'])
    const replicas = origins.map(({ name, url }) => ({ name, url }))
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: replicas.slice(0, 2), strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ackQuorum: 1 }))
    const domain = `midbatch-${crypto.randomUUID().slice(0, 6)}`
    for (let k = 0; k < 3; k++) {
      const res = await app.request(`/accounts/${domain}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
      expect(res.status).toBe(201)
    }
    await eventually(() => domainState(domain), (s) => s?.replicas.every((r) => r.acked === 3) ?? false)
    const stub = domainStub(domain)
    const api = stub as unknown as StableAreaApi
    await api.adoptReplicaSets([{ domain, origins: replicas, learnedAt: Date.now() + 10 }]) // y3 joins
    await origins[2]!.faults({ hang: true }) // holds its first entry until released
    await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
    const alarm = runDurableObjectAlarm(stub)
    await eventually(() => origins[2]!.stats(), (st) => st.requests >= 1)
    await api.adoptReplicaSets([{ domain, origins: replicas.slice(0, 2), learnedAt: Date.now() + 20 }]) // y3 leaves again
    await origins[2]!.faults({ hang: false })
    expect(await alarm).toBe(true)
    expect((await origins[2]!.stats()).applied.filter((a) => a.domain === domain).map((a) => a.sequence)).toEqual([1])
  })
  it('resumes where it was only if it was healthy when removed: one removed while suspect comes back new', async () => {
    const V = ['s1', 's2', 's3'].map((name) => ({ name, url: `https://${name}.example` }))
    const acct = domainObject()
    for (let k = 0; k < 2; k++) expect((await acct.write(V)).kind).toBe('new')
    await runInDurableObject(acct.stub as unknown as DurableObjectStub, (_i, st) => void st.storage.sql.exec(`UPDATE replicas SET acked = 2`))
    await acct.stub.setReplica('acct', 's3', 'suspect')
    await acct.write(V.slice(0, 1)) // s2 and s3 removed by a write (head 3)
    const [back] = await acct.stub.adoptReplicaSets([{ domain: 'acct', origins: V, learnedAt: Date.now() + 10 }])
    expect(back?.replicas.map((r) => [r.name, r.state, r.acked])).toEqual([
      ['s1', 'active', 2],
      ['s2', 'lagging', 2],
      ['s3', 'joining', 0],
    ])
  })
})
