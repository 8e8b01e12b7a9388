/**
 * Past the roll-forward point (docs/once.md): once `commit()` was called or the handler returned a final status,
 * the request took effect, and nothing later (maxRunMs, a throw, a TTL shorter than the handler, a renewal that
 * crosses the commit) releases its key or runs the handler again. Review s29 (S1–S5, S7).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { Admission } from '../../src/middleware/admission.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { newKey, stubFor } from '../helpers.js'

const post = (app: Hono, path: string, key: string) => app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{"amount":1}' }, env)

/** A body that takes `parts` × `ms` to stream. */
function slowBody(parts: number, ms: number): ReadableStream<Uint8Array> {
  let i = 0
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i++ === parts) return controller.close()
      await scheduler.wait(ms)
      controller.enqueue(new TextEncoder().encode(`part ${i}\n`))
    },
  })
}

describe('maxRunMs after the handler returned a final status (S1)', () => {
  it('a 201 whose body still streams at maxRunMs: the key is kept (reply-lost, final at once), the client gets a readable answer, the handler never runs again', async () => {
    const app = new Hono()
    let effects = 0
    app.post('/pay', once({ leaseMs: 1000, maxRunMs: 600, replayCache: false }), () => {
      effects++ // the deposit is made; then a slow receipt streams out
      return new Response(slowBody(4, 300), { status: 201 })
    })
    const key = newKey()
    const first = await post(app, '/pay', key)
    expect(first.status).toBe(500)
    expect(await first.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost`, retryable: false })
    const retry = await post(app, '/pay', key)
    expect(retry.status).toBe(500)
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(await retry.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost` })
    expect(effects).toBe(1)
  })

  it('a middleware after once() that runs long after next(): its answer replaces the handler 201 Hono would keep, and the retry replays it', async () => {
    const app = new Hono()
    let effects = 0
    app.post(
      '/pay',
      once({ leaseMs: 1000, maxRunMs: 600, replayCache: false }),
      async (_c, next) => {
        await next()
        await scheduler.wait(1200) // an audit log to a slow service
      },
      (c) => {
        effects++
        return c.json({ paid: effects }, 201)
      },
    )
    const key = newKey()
    const first = await post(app, '/pay', key)
    expect(first.status).toBe(500)
    expect(await first.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost` })
    const retry = await post(app, '/pay', key)
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(effects).toBe(1)
  })

  it('before the handler answered, maxRunMs still frees the key (504, retryable) and the retry runs', async () => {
    const app = new Hono()
    let runs = 0
    app.post('/pay', once({ leaseMs: 1000, maxRunMs: 300, replayCache: false }), async (c) => {
      runs++
      if (runs === 1) await scheduler.wait(800)
      return c.json({ runs }, 201)
    })
    const key = newKey()
    const first = await post(app, '/pay', key)
    expect(first.status).toBe(504)
    expect(await first.json()).toMatchObject({ type: `${PROBLEM_BASE}handler-timeout`, retryable: true })
    expect((await post(app, '/pay', key)).status).toBe(201)
    expect(runs).toBe(2)
  })
})

describe('commit() without a reply (a provisional commit)', () => {
  it('lives while its lease does, past a shorter TTL: a duplicate is refused while the handler runs, never run again (S2)', async () => {
    const app = new Hono()
    let runs = 0
    let committed!: () => void
    const provisional = new Promise<void>((resolve) => (committed = resolve))
    app.post('/orders', once({ ttlSeconds: 1, leaseMs: 3000, inFlight: 'reject', replayCache: false }), async (c) => {
      runs++
      await c.var.once.commit() // the order exists from here on
      committed()
      await scheduler.wait(2300) // the confirmation email, slow
      return c.json({ ok: true }, 201)
    })
    const key = newKey()
    const first = post(app, '/orders', key)
    await provisional
    await scheduler.wait(1200) // past the 1 s TTL, within the renewed lease
    const dup = await post(app, '/orders', key)
    expect(dup.status).toBe(409)
    expect((await first).status).toBe(201)
    expect(runs).toBe(1)
  })

  it('a thrown non-Error after it stores reply-lost as final at once: duplicates get it, not a 409 until the lease ends (S5)', async () => {
    const app = new Hono()
    let runs = 0
    app.post('/pay', once({ leaseMs: 10_000, waitMs: 200 }), async (c) => {
      runs++
      await c.var.once.commit()
      throw 'ledger said no' // a non-Error: Hono does not handle it
    })
    const key = newKey()
    await Promise.resolve(post(app, '/pay', key)).catch(() => undefined)
    const dup = await post(app, '/pay', key)
    expect(dup.status).toBe(500)
    expect(await dup.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost` })
    expect(runs).toBe(1)
  })
})

describe('a reply far over maxReplyBytes (S3)', () => {
  it('reaches the client whole without being held whole: no more than the limit and a chunk is read before the answer', async () => {
    const app = new Hono()
    let pulled = 0
    const chunk = new Uint8Array(1024 * 1024).fill(7)
    let runs = 0
    app.post('/export', once({ maxReplyBytes: 1024, replayCache: false }), () => {
      runs++
      let n = 0
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (n++ === 64) return controller.close()
            pulled += chunk.byteLength
            controller.enqueue(chunk.slice())
          },
        }),
        { status: 200 },
      )
    })
    const key = newKey()
    const res = await post(app, '/export', key)
    expect(pulled).toBeLessThanOrEqual(2 * chunk.byteLength)
    expect(res.status).toBe(200)
    expect((await res.arrayBuffer()).byteLength).toBe(64 * chunk.byteLength)
    const dup = await post(app, '/export', key)
    expect(await dup.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost`, detail: expect.stringMatching(/exceeds maxReplyBytes \(1024 bytes\)/) })
    expect(runs).toBe(1)
  })

  it('given to commit(res), is read no further than the limit either, and the handler still sends all of it', async () => {
    const app = new Hono()
    let pulled = 0
    const chunk = new Uint8Array(256 * 1024)
    app.post('/export', once({ maxReplyBytes: 1024, replayCache: false }), async (c) => {
      let n = 0
      const res = new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (n++ === 32) return controller.close()
            pulled += chunk.byteLength
            controller.enqueue(chunk.slice())
          },
        }),
        { status: 201 },
      )
      await c.var.once.commit(res)
      expect(pulled).toBeLessThanOrEqual(2 * chunk.byteLength)
      return res
    })
    const res = await post(app, '/export', newKey())
    expect(res.status).toBe(201)
    expect((await res.arrayBuffer()).byteLength).toBe(32 * chunk.byteLength)
  })
})

describe('the lease and the final commit', () => {
  it('a renewal answered after this lease\'s own final commit landed is no takeover: the signal stays live (S4)', async () => {
    let committed = false
    const stub = {
      // The object once the commit landed: a final record matches no renewal.
      renew: async () => !committed,
      commit: async () => {
        committed = true // landed at once; its answer takes a while (a large reply, a slow link)
        await scheduler.wait(600)
        return { ok: true as const, expiresAt: Date.now() + 60_000 }
      },
    } as unknown as StableAreaApi
    const admission = new Admission(() => stub, 'lookup', 'token', 'req-1', 1000)
    admission.startRenewing(30_000)
    await scheduler.wait(100)
    const result = await admission.commit({ status: 201, headers: [], body: new Uint8Array() }, false, 60_000)
    admission.stopRenewing()
    expect({ ok: result.ok, aborted: admission.signal.aborted, lost: admission.lost }).toEqual({ ok: true, aborted: false, lost: false })
  })

  it('a release waits for a renewal already on its way, so the renewal cannot land after it and give the lease back (S12)', async () => {
    const landed: string[] = []
    const stub = {
      renew: async () => {
        await scheduler.wait(300)
        landed.push('renew')
        return true
      },
      release: async () => {
        landed.push('release')
        return true
      },
    } as unknown as StableAreaApi
    const admission = new Admission(() => stub, 'lookup', 'token', 'req-1', 300)
    admission.startRenewing(30_000)
    await scheduler.wait(150) // the first renewal (at 100 ms) is on its way
    await admission.release()
    expect(landed).toEqual(['renew', 'release'])
  })

  it('a second final commit of one lease writes nothing and says so (again), so no isolate caches a reply the record does not hold (S7)', async () => {
    const key = newKey()
    const stub = (await stubFor(key)) as unknown as StableAreaApi
    const lookup = lookupKey('', key)
    const admitted = await stub.admit({ lookup, fingerprint: 'f', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })
    if (admitted.kind !== 'new') throw new Error(admitted.kind)
    const reply = (text: string) => ({ status: 201, headers: [] as [string, string][], body: new TextEncoder().encode(text) })
    expect(await stub.commit({ lookup, token: admitted.token, reply: reply('first'), ttlMs: 60_000 })).toEqual({ ok: true, expiresAt: expect.any(Number) })
    expect(await stub.commit({ lookup, token: admitted.token, reply: reply('second'), ttlMs: 60_000 })).toMatchObject({ ok: true, again: true })
    const replay = await stub.admit({ lookup, fingerprint: 'f', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })
    expect(replay.kind === 'replay' && new TextDecoder().decode(replay.reply.body)).toBe('first')
  })
})
