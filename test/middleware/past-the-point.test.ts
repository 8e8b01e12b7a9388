/**
 * Past the roll-forward point (docs/once.md): once `commit()` was called or the handler returned a final status,
 * the request took effect, and nothing later (maxRunMs, a throw, a TTL shorter than the handler, a renewal that
 * crosses the commit) releases its key or runs the handler again. Review s29 (S1–S5, S7).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { Admission } from '../../src/middleware/admission.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { newKey, stubFor } from '../helpers.js'

const post = (app: Hono, path: string, key: string) => app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{"amount":1}' }, env)

/** A large body of `parts` copies of `chunk`, made as it is read: `pulled()` says how much was read so far. */
function pulledBody(chunk: Uint8Array, parts: number): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let n = 0
  let pulled = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n++ === parts) return controller.close()
      pulled += chunk.byteLength
      controller.enqueue(chunk.slice())
    },
  })
  return { body, pulled: () => pulled }
}

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
    const chunk = new Uint8Array(1024 * 1024).fill(7)
    let made: ReturnType<typeof pulledBody> | undefined
    let runs = 0
    app.post('/export', once({ maxReplyBytes: 1024, replayCache: false }), () => {
      runs++
      made = pulledBody(chunk, 64)
      return new Response(made.body, { status: 200 })
    })
    const key = newKey()
    const res = await post(app, '/export', key)
    expect(made!.pulled()).toBeLessThanOrEqual(2 * chunk.byteLength)
    expect(res.status).toBe(200)
    expect((await res.arrayBuffer()).byteLength).toBe(64 * chunk.byteLength)
    const dup = await post(app, '/export', key)
    expect(await dup.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost`, detail: expect.stringMatching(/exceeds maxReplyBytes \(1024 bytes\)/) })
    expect(runs).toBe(1)
  })

  it('given to commit(res), is read no further than the limit either, and the handler still sends all of it', async () => {
    const app = new Hono()
    const chunk = new Uint8Array(256 * 1024)
    app.post('/export', once({ maxReplyBytes: 1024, replayCache: false }), async (c) => {
      const made = pulledBody(chunk, 32)
      const res = new Response(made.body, { status: 201 })
      await c.var.once.commit(res)
      expect(made.pulled()).toBeLessThanOrEqual(2 * chunk.byteLength)
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

  it('after a final commit that failed, a renewal that finds the lease gone is a takeover again: the signal aborts (review s29c C5)', async () => {
    let takenOver = false
    const stub = {
      renew: async () => !takenOver,
      commit: async () => {
        throw new Error('network connection lost')
      },
    } as unknown as StableAreaApi
    const admission = new Admission(() => stub, 'lookup', 'token', 'req-1', 600)
    admission.startRenewing(30_000)
    expect(await admission.commit({ status: 201, headers: [], body: new Uint8Array() }, false, 60_000)).toMatchObject({ ok: false, reason: 'unavailable' })
    takenOver = true
    await scheduler.wait(500) // a renewal (every 200 ms) answers false
    admission.stopRenewing()
    expect({ aborted: admission.signal.aborted, lost: admission.lost }).toEqual({ aborted: true, lost: true })
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

describe("once()'s own answers in place of the handler's keep the caller's headers (review s29c C1)", () => {
  /** cors() and a request id around once(), the route given. */
  function browserApp(route: (app: Hono) => void) {
    const app = new Hono()
    app.use('*', cors({ origin: 'https://app.example' }))
    app.use('*', async (c, next) => {
      c.header('x-request-id', 'r-1')
      await next()
    })
    route(app)
    return (key: string) => app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, origin: 'https://app.example' }, body: '{"amount":1}' }, env)
  }
  const callers = (res: Response) => [res.headers.get('access-control-allow-origin'), res.headers.get('x-request-id')]

  it('the reply-lost after maxRunMs when the handler had answered (a middleware after once() ran long)', async () => {
    const send = browserApp((app) =>
      app.post(
        '/pay',
        once({ leaseMs: 1000, maxRunMs: 500, replayCache: false }),
        async (_c, next) => {
          await next()
          await scheduler.wait(1000)
        },
        (c) => c.json({ paid: true }, 201, { location: '/pay/1' }),
      ),
    )
    const first = await send(newKey())
    expect(first.status).toBe(500)
    expect(callers(first)).toEqual(['https://app.example', 'r-1'])
    expect(first.headers.get('location')).toBeNull() // the handler's own headers are not the problem's
  })

  it('the committed reply that answers for a handler that threw after commit(res)', async () => {
    const send = browserApp((app) =>
      app.post('/pay', once({ replayCache: false }), async (c) => {
        await c.var.once.commit(c.json({ paid: true }, 201))
        throw new Error('the confirmation email failed')
      }),
    )
    const first = await send(newKey())
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(callers(first)).toEqual(['https://app.example', 'r-1'])
  })

  it('(as before) the 504 of a handler that never answered', async () => {
    const send = browserApp((app) =>
      app.post('/pay', once({ leaseMs: 1000, maxRunMs: 300, replayCache: false }), async (c) => {
        await scheduler.wait(800)
        return c.json({ paid: true }, 201)
      }),
    )
    const first = await send(newKey())
    expect(first.status).toBe(504)
    expect(callers(first)).toEqual(['https://app.example', 'r-1'])
  })
})

describe('maxRunMs: what counts as the handler having answered', () => {
  it('a response an outer middleware set before once() is not the handler\'s: a hung handler still frees its key (504) and the retry runs (review s29c C2)', async () => {
    const app = new Hono()
    let runs = 0
    app.use('*', async (c, next) => {
      c.res = c.json({ fallback: true }, 200)
      await next()
    })
    app.post('/pay', once({ leaseMs: 1000, maxRunMs: 300, replayCache: false }), async (c) => {
      runs++
      if (runs === 1) await scheduler.wait(800) // hung before any effect
      return c.json({ runs }, 201)
    })
    const key = newKey()
    expect((await post(app, '/pay', key)).status).toBe(504)
    // (Hono keeps the outer middleware's response over the handler's return: the retry's status says nothing here.)
    expect((await post(app, '/pay', key)).headers.get('idempotent-replayed')).toBeNull()
    expect(runs).toBe(2)
  })

  it('the commit of the handler\'s reply lands while maxRunMs fires: the first client gets that reply, as its duplicates do (review s29c C3)', async () => {
    type Ns = { idFromName(name: string): unknown; get(id: unknown, options?: unknown): Record<string, (...args: unknown[]) => Promise<unknown>> }
    const real = (env as unknown as { ONCE: Ns }).ONCE
    // The real stable area, whose commit() lands at once but answers 600 ms later (a slow link).
    const slow: Ns = {
      idFromName: (name) => real.idFromName(name),
      get(id, options) {
        const stub = real.get(id, options)
        return new Proxy(stub, {
          get(target, prop) {
            if (typeof prop !== 'string' || prop === 'then') return undefined
            if (prop === 'commit') {
              return async (...args: unknown[]) => {
                const result = await target.commit!(...args)
                await scheduler.wait(600)
                return result
              }
            }
            return (...args: unknown[]) => target[prop]!(...args)
          },
        })
      },
    }
    const app = new Hono()
    app.post('/pay', once({ leaseMs: 3000, maxRunMs: 300, replayCache: false }), (c) => c.json({ paid: true }, 201))
    const key = newKey()
    const first = await app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, { ...(env as object), ONCE: slow })
    const dup = await app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect(dup.headers.get('idempotent-replayed')).toBe('true')
    expect({ status: first.status, body: await first.text() }).toEqual({ status: 201, body: '{"paid":true}' })
    expect({ status: dup.status, body: await dup.text() }).toEqual({ status: 201, body: '{"paid":true}' })
  })
})

describe('commit(res, { args }) with onDuplicate (review s29c C7)', () => {
  it('reads none of the body it does not keep: a large streamed reply is not pulled before commit() resolves, and the client gets all of it', async () => {
    const app = new Hono()
    let pulledAtCommit = -1
    const chunk = new Uint8Array(1024 * 1024).fill(7)
    app.post('/export', once({ onDuplicate: (args, c) => c.json(args, 201), replayCache: false }), async (c) => {
      const made = pulledBody(chunk, 64)
      const res = new Response(made.body, { status: 201 })
      await c.var.once.commit(res, { args: { exportId: 'e1' } })
      pulledAtCommit = made.pulled()
      return res
    })
    const key = newKey()
    const res = await post(app, '/export', key)
    expect(res.status).toBe(201)
    expect((await res.arrayBuffer()).byteLength).toBe(64 * chunk.byteLength)
    expect(pulledAtCommit).toBeLessThanOrEqual(2 * chunk.byteLength)
    expect(await (await post(app, '/export', key)).json()).toEqual({ exportId: 'e1' })
  })
})
