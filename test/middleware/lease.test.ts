import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { bank, newKey, problemOf, stubFor, until } from '../helpers.js'

const post = async (app: Hono, path: string, key: string, headers: Record<string, string> = {}): Promise<Response> =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, ...headers }, body: '{"amount":1}' }, env)

describe('a handler that never returns (issue 7.1)', () => {
  it('is abandoned after maxRunMs: its signal aborts, the client gets a retryable 504, and a retry runs the handler once', async () => {
    const app = new Hono()
    let runs = 0
    let effects = 0
    let firstSignal: AbortSignal | undefined
    app.post('/pay', once({ leaseMs: 1000, maxRunMs: 1500, inFlight: 'reject' }), async (c) => {
      runs++
      if (c.req.header('x-hang')) {
        firstSignal = c.var.once.signal
        await new Promise(() => {}) // an upstream that never answers
      }
      effects++
      return c.text('paid', 201)
    })
    const key = newKey()
    const started = Date.now()
    const hung = await post(app, '/pay', key, { 'x-hang': '1' })
    expect(hung.status).toBe(504)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(await problemOf(hung)).toMatchObject({ type: `${PROBLEM_BASE}handler-timeout`, retryable: true, idempotency_key: key })
    expect(firstSignal?.aborted).toBe(true)
    // The key was freed at once: the retry runs (the lease would have kept it 409 for ever before).
    const retry = await post(app, '/pay', key)
    expect(retry.status).toBe(201)
    expect((await post(app, '/pay', key)).headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(2)
    expect(effects).toBe(1)
  })
})

describe('a streamed reply (issue 7.2)', () => {
  it('keeps its lease while once() reads the stream: one run, and every duplicate gets the same bytes', async () => {
    const app = new Hono()
    let runs = 0
    app.post('/report', once({ leaseMs: 1000, replayCache: false }), () => {
      const run = ++runs
      let i = 0
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (i++ === 6) return controller.close()
          await scheduler.wait(400) // 2.4 s in all: longer than twice the lease
          controller.enqueue(new TextEncoder().encode(`run ${run} part ${i}\n`))
        },
      })
      return new Response(stream, { status: 201 })
    })
    const key = newKey()
    const first = post(app, '/report', key)
    await scheduler.wait(200)
    const second = post(app, '/report', key)
    const [a, b] = await Promise.all([first, second])
    const third = await post(app, '/report', key)
    const bodies = await Promise.all([a.text(), b.text(), third.text()])
    expect(runs).toBe(1)
    expect(new Set(bodies).size).toBe(1)
    expect(bodies[0]).toContain('run 1 part 6')
  })
})

describe('a live handler under load (issue 7.6)', () => {
  it('keeps its lease with 100 duplicates waiting and 64 other requests in flight: one run per key', async () => {
    const runs = new Map<string, number>()
    const app = new Hono()
    // A lease of 3 s renewed every second: a renewal may come up to 2 s late under load (the suite shares 2 cores with
    // three runtimes: with 1 s leases a renewal 700 ms late let a waiting duplicate take the key over). The slow
    // handler outlives its first lease, so only renewals keep it.
    app.post('/slow', once({ leaseMs: 3000, waitMs: 20_000 }), async (c) => {
      const key = c.var.once.key
      runs.set(key, (runs.get(key) ?? 0) + 1)
      await scheduler.wait(key.startsWith('slow') ? 4000 : 200)
      return c.text(`${key} ${runs.get(key)}`, 201)
    })
    const slow = `slow-${newKey()}`
    const first = post(app, '/slow', slow)
    const others = Array.from({ length: 64 }, () => post(app, '/slow', newKey()))
    const duplicates = Array.from({ length: 100 }, () => post(app, '/slow', slow))
    const answers = await Promise.all([first, ...duplicates])
    await Promise.all(others)
    expect(runs.get(slow)).toBe(1)
    expect(new Set(await Promise.all(answers.map((r) => r.text())))).toEqual(new Set([`${slow} 1`]))
    expect([...runs.values()].every((n) => n === 1)).toBe(true)
  })
})

describe('renewals across an object reset (issue 11.1)', () => {
  it('reconnect after the stable area restarts mid-handler: a duplicate arriving after the old lease ended does not run it again', async () => {
    const { post: deposit, hold, effects } = bank({ leaseMs: 1000, inFlight: 'reject', replayCache: false })
    const key = newKey()
    const open = hold(key)
    const first = deposit(key)
    const admitted = await until(key, (r) => r?.state === 'in_flight')
    // The stub that renews has been used: it is bound to this instance of the object.
    await until(key, (r) => (r?.leaseUntil ?? 0) > (admitted?.leaseUntil ?? 0), 2000)
    // The object restarts (as on a code update or eviction): every stub made before now is broken.
    await runInDurableObject(await stubFor(key), (_obj, state) => state.abort('test: reset')).catch(() => {})
    await scheduler.wait(2200) // past the lease as admitted: only renewals through a fresh stub keep it
    const duplicate = await deposit(key)
    expect(duplicate.status).toBe(409)
    open()
    expect((await first).status).toBe(201)
    expect((await deposit(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })
})
