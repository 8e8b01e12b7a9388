import { env } from 'cloudflare:workers'
import { createExecutionContext, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { requestId } from 'hono/request-id'
import { describe, expect, it, vi } from 'vitest'
import { dispatch, once, proxy, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { type FarmOrigin, startOrigins } from '../farm.js'
import { commitsUnderControl, type CommitMode, watch } from '../commits-under-control.js'
import { expireLeases, newKey, recordOf, stubFor, until } from '../helpers.js'

/**
 * On a proxy() route the client gets the origin's answer while the commit
 * lands in the background (CommitPoint.finish): one durable round trip on its
 * path. These tests hold or drop that commit to show what the client sees and
 * that nothing is lost: the origin keeps the answer under the request id, and
 * the relay stored with the admit lets the alarm commit it.
 */

const body = JSON.stringify({ amount: 100 })

function edge(origins: FarmOrigin[], ns: typeof env.ONCE, answerFirst = true) {
  const options: ProxyOptions = { origins: origins.map(({ name, url }) => ({ name, url })), strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }
  const app = new Hono()
  app.use('*', once({ namespace: () => ns, leaseMs: 3000, replayCache: false, answerFirst }))
  app.post('/accounts/:id/deposits', proxy(options))
  app.delete('/accounts/:id', proxy(options)) // closing an account: 204, no body
  // Routes where a proxy() is matched (a catch-all registered last), but the answer is not its answer to the stored request:
  // a handler of the app's own (its effect is nowhere else), a check that answers itself, a middleware that rewrites
  // proxy()'s answer, and dispatch() of another request in a handler.
  app.post('/other/:id/local', (c) => c.json({ local: true }, 201))
  app.post('/other/:id/checked', (c) => c.json({ error: 'amount must be positive' }, 400))
  app.post('/other/:id/wrapped', async (c, next) => {
    await next()
    c.res = new Response(JSON.stringify({ wrapped: await c.res.text() }), { status: c.res.status, headers: { 'content-type': 'application/json' } })
  })
  app.post('/other/:id/tagged', async (c, next) => {
    await next()
    c.res.headers.set('x-tag', 'added after proxy()') // a header that is stored, set on proxy()'s answer in place
  })
  app.post('/other/:id/dispatched', async (c) =>
    dispatch(c, new Request(c.req.url.replace('/other/', '/accounts/').replace('/dispatched', '/deposits'), { method: 'POST', headers: c.req.raw.headers, body: await c.req.arrayBuffer() }), options),
  )
  app.post('/other/*', proxy(options))
  // An ordered write: its log entry is stored with the admit.
  const ordered = new Hono()
  ordered.post(
    '/accounts/:id/deposits',
    once({ namespace: () => ns, leaseMs: 3000, replayCache: false, answerFirst, domain: (c) => `af-${c.req.param('id') ?? ''}` }),
    proxy({ ...options, strategy: 'replicate' }),
  )
  /** A deposit with an execution context (as on Workers), or without one (`app.fetch(req, env)` alone). */
  const post = (path: string, key: string, withContext = true) =>
    (path.startsWith('/ordered/') ? ordered : app).request(
      path.slice(path.startsWith('/ordered/') ? 8 : 0),
      { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body },
      env,
      withContext ? createExecutionContext() : undefined,
    )
  /** Closes an account (DELETE, no body). */
  const close = (account: string, key: string) =>
    app.request(`/accounts/${account}`, { method: 'DELETE', headers: { 'idempotency-key': `"${key}"` } }, env, createExecutionContext())
  return { post, close }
}

/** One origin, the stable area with its commits in `mode`, the edge in front of them, and a new key. */
async function scene(mode: CommitMode = 'pass') {
  const [eu] = await startOrigins(['eu'])
  const control = commitsUnderControl()
  control.set(mode)
  const { post, close } = edge([eu!], control.ns)
  return { eu: eu!, control, post, close, key: newKey() }
}

/** The object of an ordering domain, and its one record (each test's domain is new). */
const domainObject = (domain: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${domain}`))
const domainRecord = async (domain: string) =>
  runInDurableObject(domainObject(domain), (_o, state) => state.storage.sql.exec('SELECT state, status, request_id FROM records').toArray()[0])

/** The headers a replay carries from the first answer (not the date, its timing, nor the replay marker). */
const kept = (headers: Headers) => [...headers].filter(([name]) => !['date', 'server-timing', 'idempotent-replayed'].includes(name))

describe('proxy() routes answer first, then commit (one durable round trip on the client path)', () => {
  it('the client has the answer while the commit is held; a duplicate waits for it and replays the same bytes', async () => {
    const { eu, control, post, key } = await scene('hold')
    const first = await post('/accounts/af1/deposits', key)
    expect(first.status).toBe(201)
    const firstBody = await first.text()
    await control.sent() // the commit was sent after the answer, and is held
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
    // A duplicate now waits (waitMs) for the commit, inside the object, instead of running again.
    const duplicate = post('/accounts/af1/deposits', key)
    await until(key, (info) => (info?.waiters ?? 0) >= 1)
    control.open()
    const replay = await duplicate
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(firstBody)
    const stats = await eu.stats()
    expect(stats.balances).toEqual({ af1: 100 })
    expect(stats.requests).toBe(1)
  })

  it('a Worker that dies after answering (its commit never sent): the alarm resends the relay, the origin replays, the record holds what the client got', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { eu, control, post, key } = await scene('drop')
    const first = await post('/accounts/af2/deposits', key)
    expect(first.status).toBe(201)
    const firstBody = await first.text()
    const requestId = (await recordOf(key))?.request_id as string
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })

    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 201, request_id: requestId })

    control.set('pass')
    const replay = await post('/accounts/af2/deposits', key)
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(firstBody)
    expect(kept(replay.headers)).toEqual(kept(first.headers))
    const stats = await eu.stats()
    expect(stats.byRequestId[requestId]).toMatchObject({ received: 2, applied: 1 }) // the resend was only replayed
    expect(stats.balances).toEqual({ af2: 100 })
    error.mockRestore()
  })

  it('the kind: 12 deposits, every other commit dropped; after the alarm each was applied once and replays what its client got', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { eu, control, post } = await scene()
    const firsts: { key: string; account: string; body: string }[] = []
    for (let i = 0; i < 12; i++) {
      const key = newKey()
      const account = `af3-${i}`
      control.set(i % 2 === 0 ? 'drop' : 'pass')
      const res = await post(`/accounts/${account}/deposits`, key)
      expect(res.status).toBe(201)
      firsts.push({ key, account, body: await res.text() })
    }
    // Every key lives in the one shard's object: one lease expiry and one alarm run reach them all.
    await expireLeases(firsts[0]!.key)
    await runDurableObjectAlarm(await stubFor(firsts[0]!.key))
    control.set('pass')
    for (const { key, account, body: firstBody } of firsts) {
      await until(key, (info) => info?.state === 'committed')
      const replay = await post(`/accounts/${account}/deposits`, key)
      expect(replay.headers.get('idempotent-replayed')).toBe('true')
      expect(await replay.text()).toBe(firstBody)
    }
    const stats = await eu.stats()
    expect(Object.values(stats.balances)).toEqual(Array(12).fill(100))
    for (const { applied } of Object.values(stats.byRequestId)) expect(applied).toBe(1)
    // The six dropped commits were recovered by the alarm's resend (received twice, applied once).
    expect(Object.values(stats.byRequestId).filter(({ received }) => received === 2)).toHaveLength(6)
    error.mockRestore()
  })

  it('an ordered write (replicate) too: a Worker that dies after answering leaves a log entry the alarm finishes; the replica applied it once', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { eu, control, post, key } = await scene('drop')
    const first = await post('/ordered/accounts/af5/deposits', key)
    expect(first.status).toBe(201)
    expect(first.headers.get('once-sequence')).toBe('1')
    const firstBody = await first.text()
    expect(await domainRecord('af-af5')).toMatchObject({ state: 'in_flight' })

    await runInDurableObject(domainObject('af-af5'), (_o, state) => void state.storage.sql.exec('UPDATE records SET lease_until = ?', Date.now() - 1))
    await runDurableObjectAlarm(domainObject('af-af5'))
    const record = await domainRecord('af-af5')
    expect(record).toMatchObject({ state: 'committed', status: 201 })

    control.set('pass')
    const replay = await post('/ordered/accounts/af5/deposits', key)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(firstBody)
    expect(kept(replay.headers)).toEqual(kept(first.headers))
    const stats = await eu.stats()
    expect(stats.byRequestId[record!.request_id as string]).toMatchObject({ received: 2, applied: 1 })
    expect(stats.balances).toEqual({ af5: 100 })
    error.mockRestore()
  })

  it('the lease is renewed while the commit after the answer is on its way', async () => {
    const { eu, control, post, key } = await scene('hold')
    expect((await post('/accounts/af8/deposits', key)).status).toBe(201)
    await control.sent()
    const before = (await recordOf(key))?.lease_until as number
    // leaseMs 3000: a renewal every second, bounded here at 2.5 s.
    for (let i = 0; i < 250 && control.renewals() === 0; i++) await scheduler.wait(10)
    expect(control.renewals()).toBeGreaterThan(0)
    expect((await recordOf(key))?.lease_until as number).toBeGreaterThan(before)
    control.open()
    await until(key, (info) => info?.state === 'committed')
  })

  // What the object does not keep to resend, it cannot lose by answering first: a Worker that dies before the commit
  // lands leaves the record running, as one that dies before it answers does (the client, though, has its answer).
  const unkept: [string, number][] = [
    ['local', 201], // a handler of the app's own
    ['checked', 400], // a check between once() and proxy() that answers itself
    ['wrapped', 404], // proxy()'s answer (the origin has no such path), rewritten by a middleware between once() and proxy()
    ['tagged', 404], // proxy()'s answer with a stored header added in place
    ['dispatched', 201], // dispatch() of another request in a handler
  ]

  it('routes whose request the object does not keep (no relay stored with the admit) answer first too, though a proxy() is matched', async () => {
    const [eu] = await startOrigins(['eu'])
    for (const [route, status] of unkept) {
      const control = commitsUnderControl()
      const { post } = edge([eu!], control.ns)
      const key = newKey()
      control.set('hold')
      const pending = post(`/other/af4/${route}`, key)
      const watched = watch(Promise.resolve(pending))
      await control.sent()
      for (let i = 0; i < 100 && !watched.settled(); i++) await scheduler.wait(5)
      expect(watched.settled(), route).toBe(true) // answered while its commit is held
      expect((await pending).status, route).toBe(status)
      expect(await recordOf(key), route).toMatchObject({ state: 'in_flight' })
      const duplicate = post(`/other/af4/${route}`, key)
      await until(key, (info) => (info?.waiters ?? 0) >= 1)
      control.open()
      const replay = await duplicate
      expect([replay.status, replay.headers.get('idempotent-replayed')], route).toEqual([status, 'true'])
      expect(await recordOf(key), route).toMatchObject({ state: 'committed', status })
    }
    // The request dispatch() sent is the relay stored for a resend, not the one the admit stored for the matched proxy().
    expect((await eu!.stats()).balances).toEqual({ af4: 100 })
  })

  it('with answerFirst: false every route commits before it answers: proxy(), an ordered write and a handler of its own', async () => {
    const [eu] = await startOrigins(['eu'])
    for (const path of ['/accounts/af11/deposits', '/ordered/accounts/af11/deposits', ...unkept.map(([route]) => `/other/af11/${route}`)]) {
      const control = commitsUnderControl()
      const { post } = edge([eu!], control.ns, false)
      const key = newKey()
      control.set('hold')
      const pending = post(path, key)
      const watched = watch(Promise.resolve(pending))
      await control.sent()
      // The commit is held: give an answer that does not wait for it a few turns to arrive (it must not).
      await scheduler.wait(20)
      expect(watched.settled(), path).toBe(false)
      control.open()
      expect((await pending).status, path).toBeLessThan(500)
      if (!path.startsWith('/ordered/')) expect(await recordOf(key), path).toMatchObject({ state: 'committed' })
    }
  })

  it("a relayed route whose stored reply is not proxy()'s answer (a reply over maxReplyBytes, kept as reply-lost) commits before it answers", async () => {
    const { eu, control, key } = await scene('hold')
    const app = new Hono()
    app.post('/accounts/:id/deposits', once({ namespace: () => control.ns, leaseMs: 3000, replayCache: false, maxReplyBytes: 8 }), proxy({ origins: [{ name: 'eu', url: eu.url }], strategy: 'failover' }))
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const init = { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body }
    const pending = Promise.resolve(app.request('/accounts/af12/deposits', init, env, createExecutionContext()))
    const watched = watch(pending)
    await control.sent()
    await scheduler.wait(20)
    // What the alarm would commit (the origin's answer) is not what is stored: the answer waits for its commit.
    expect(watched.settled()).toBe(false)
    control.open()
    expect((await pending).status).toBe(201) // the client gets the reply itself; duplicates get reply-lost
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 500 })
    warn.mockRestore()
  })

  it("headers outer middleware set for the caller (cors(), requestId()) are not stored: proxy()'s answer still goes first", async () => {
    const { eu, control, key } = await scene('hold')
    const app = new Hono()
    app.use(cors({ origin: 'https://a.example', credentials: true }), requestId())
    app.use(once({ namespace: () => control.ns, leaseMs: 3000, replayCache: false }))
    app.post('/accounts/:id/deposits', proxy({ origins: [{ name: 'eu', url: eu.url }], strategy: 'failover' }))
    const init = { method: 'POST', headers: { 'idempotency-key': `"${key}"`, origin: 'https://a.example', 'content-type': 'application/json' }, body }
    const res = await app.request('/accounts/af9/deposits', init, env, createExecutionContext())
    expect(res.status).toBe(201)
    expect(res.headers.get('access-control-allow-origin')).toBe('https://a.example')
    await control.sent()
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' }) // answered while the commit is held
    control.open()
    await until(key, (info) => info?.state === 'committed')
  })

  it('an answer without a body (204 from closing an account) goes first too, and its duplicate replays 204 with no body', async () => {
    const { eu, control, post, close, key } = await scene('hold')
    const pending = close('af10', key)
    const watched = watch(Promise.resolve(pending))
    await control.sent() // the commit was sent, and is held
    for (let i = 0; i < 100 && !watched.settled(); i++) await scheduler.wait(5)
    expect(watched.settled()).toBe(true) // answered before its commit
    const first = await pending
    expect(first.status).toBe(204)
    expect(first.body).toBeNull()
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
    const duplicate = close('af10', key)
    await until(key, (info) => (info?.waiters ?? 0) >= 1)
    control.open()
    const replay = await duplicate
    expect(replay.status).toBe(204)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(replay.body).toBeNull()
    expect(kept(replay.headers)).toEqual(kept(first.headers))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 204 })
    const stats = await eu.stats()
    expect(stats.requests).toBe(1)
    expect(Object.values(stats.byRequestId)).toEqual([expect.objectContaining({ received: 1, applied: 1 })]) // closed once
    // An account that holds money is not closed: a 422 problem, final as well.
    control.set('pass')
    expect((await post('/accounts/af10/deposits', newKey())).status).toBe(201)
    const refused = await close('af10', newKey())
    expect(refused.status).toBe(422)
    expect(await refused.json()).toMatchObject({ type: 'https://hono-once.dev/examples/bank/account-not-empty' })
    expect((await eu.stats()).balances).toEqual({ af10: 100 })
  })

  it('a Worker that dies after answering a 204 (its commit never sent): the alarm resends the relay and commits the 204 the origin replays', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { eu, control, close, key } = await scene('drop')
    const first = await close('af11', key)
    expect(first.status).toBe(204)
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 204 })
    control.set('pass')
    const replay = await close('af11', key)
    expect(replay.status).toBe(204)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(replay.body).toBeNull()
    expect(kept(replay.headers)).toEqual(kept(first.headers))
    expect(Object.values((await eu.stats()).byRequestId)).toEqual([expect.objectContaining({ received: 2, applied: 1 })]) // the resend was only replayed
    error.mockRestore()
  })

  it('without an execution context (no waitUntil to finish it) a proxy() route commits before it answers', async () => {
    const { eu, control, post, key } = await scene('hold')
    const pending = post('/accounts/af6/deposits', key, false)
    const watched = watch(Promise.resolve(pending))
    await control.sent()
    await scheduler.wait(20)
    expect(watched.settled()).toBe(false)
    control.open()
    expect((await pending).status).toBe(201)
    expect(await recordOf(key)).toMatchObject({ state: 'committed' })
  })

  it('dispatch() in a handler on a path a catch-all proxy() also matches: no relay is stored (the alarm never sends what a handler dispatched)', async () => {
    const { eu, control, post, key } = await scene('hold')
    const pending = post('/other/af7/dispatched', key)
    await control.sent()
    const relay = await runInDurableObject(await stubFor(key), (_o, state) => state.storage.sql.exec('SELECT method, path FROM relays WHERE lookup = ?', lookupKey('', key)).toArray()[0])
    control.open()
    expect((await pending).status).toBe(201)
    expect(relay).toBeUndefined()
  })
})
