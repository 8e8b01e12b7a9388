import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it, vi } from 'vitest'
import { once, OnceCommitError, PROBLEM_BASE } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { expireLeases, newKey, problemOf, stubFor, until } from '../helpers.js'

const post = async (app: Hono, path: string, key: string, body = '{"amount":1}'): Promise<Response> =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body }, env)

/** A gate a handler waits on until the test opens it. */
function gate() {
  let open!: () => void
  const closed = new Promise<void>((r) => (open = r))
  return { closed, open }
}

describe('commit() without a response: a provisional commit (issue 7.3)', () => {
  it('makes duplicates wait for the final reply, in this isolate and in another once() instance, and caches only the final one', async () => {
    const work = gate()
    let runs = 0
    const handler = async (c: import('hono').Context) => {
      runs++
      await c.var.once.commit() // the effect happened; the reply comes later
      await work.closed
      return c.json({ order: 17 }, 201)
    }
    const a = new Hono().post('/orders', once({ waitMs: 10_000 }), handler)
    const b = new Hono().post('/orders', once({ waitMs: 10_000 }), handler) // a second isolate's once(), same namespace
    const key = newKey()
    const first = post(a, '/orders', key)
    await until(key, (r) => r?.provisional === true)
    const fromA = post(a, '/orders', key)
    const fromB = post(b, '/orders', key)
    await until(key, (r) => r?.waiters === 2)
    work.open()
    const answers = await Promise.all([first, fromA, fromB])
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201])
    expect(answers.slice(1).map((r) => r.headers.get('idempotent-replayed'))).toEqual(['true', 'true'])
    // b's cache holds the final reply, never the placeholder.
    const later = await post(b, '/orders', key)
    expect(later.status).toBe(201)
    expect(await later.json()).toEqual({ order: 17 })
    expect(runs).toBe(1)
  })

  it('answers the placeholder only when the original really died (its lease ran out)', async () => {
    const key = newKey()
    const stub = (await stubFor(key)) as unknown as StableAreaApi
    const lookup = lookupKey('', key)
    const { fingerprint } = await import('../../src/middleware/fingerprint.js')
    const print = await fingerprint({ method: 'POST', url: 'http://localhost/orders', headers: new Headers(), body: new TextEncoder().encode('{"amount":1}') })
    const admitted = await stub.admit({ lookup, fingerprint: print, leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })
    if (admitted.kind !== 'new') throw new Error('expected new')
    const placeholder = { status: 500, headers: [['content-type', 'application/problem+json']] as [string, string][], body: new TextEncoder().encode('{"type":"reply-lost"}') }
    expect(await stub.commit({ lookup, token: admitted.token, reply: placeholder, ttlMs: 60_000, provisional: true, leaseMs: 10_000 })).toMatchObject({ ok: true })
    // The Worker dies here, after its provisional commit.
    let runs = 0
    const app = new Hono().post('/orders', once({ inFlight: 'reject' }), (c) => c.text(String(++runs), 201))
    expect((await post(app, '/orders', key)).status).toBe(409) // its lease lives: it may still answer
    await expireLeases(key)
    const res = await post(app, '/orders', key)
    expect(res.status).toBe(500)
    expect(res.headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(0)
  })
})

describe('commit() tells the truth (issue 11.2)', () => {
  it('rejects with OnceCommitError(lease_lost) when another attempt took the key over', async () => {
    const stalled = gate()
    let caught: unknown
    const app = new Hono().post('/pay', once({ leaseMs: 1000, inFlight: 'reject', replayCache: false }), async (c) => {
      if (c.req.header('x-first')) {
        c.var.once.signal.addEventListener('abort', () => stalled.open())
        await stalled.closed // stalls past its lease (as a frozen isolate would)
        try {
          await c.var.once.commit(c.text('first', 201))
        } catch (err) {
          caught = err
          return c.text('not committed', 503)
        }
      }
      return c.text('second', 201)
    })
    const key = newKey()
    const first = app.request('/pay', { method: 'POST', headers: { 'idempotency-key': key, 'x-first': '1' }, body: '{}' }, env)
    await until(key, (r) => r?.state === 'in_flight')
    await expireLeases(key)
    // The takeover: a retry admits the key while the first still runs; the first's next renewal learns it lost.
    const second = await app.request('/pay', { method: 'POST', headers: { 'idempotency-key': key }, body: '{}' }, env)
    expect(await second.text()).toBe('second')
    expect((await first).status).toBe(503)
    expect(caught).toBeInstanceOf(OnceCommitError)
    expect(caught).toMatchObject({ reason: 'lease_lost' })
  })

  it('rejects with OnceCommitError(unavailable) when the stable area cannot be reached, and the client is told the truth', async () => {
    const failing = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: (id: DurableObjectId) => {
        const real = env.ONCE.get(id) as unknown as StableAreaApi
        return {
          admit: (r: Parameters<StableAreaApi['admit']>[0]) => real.admit(r),
          renew: () => Promise.resolve(true),
          release: (l: string, t: string) => real.release(l, t),
          commit: () => Promise.reject(new Error('Network connection lost.')),
        }
      },
    } as unknown as typeof env.ONCE
    let reason: unknown
    const app = new Hono().post('/pay', once({ namespace: () => failing }), async (c) => {
      const err = await c.var.once.commit(c.text('paid', 201)).catch((e: unknown) => e)
      reason = err instanceof OnceCommitError ? err.reason : err
      return c.text('could not record the payment; retry', 503)
    })
    const res = await post(app, '/pay', newKey())
    expect(reason).toBe('unavailable')
    expect(res.status).toBe(503)
  })
})

describe('one rule for what is final, thrown or returned (issue 11.8)', () => {
  it('a thrown non-Error releases the key (a retry runs at once, not a 409 for the whole lease)', async () => {
    let runs = 0
    const app = new Hono().post('/x', once({ inFlight: 'reject' }), (c) => {
      if (++runs === 1) throw 'not an Error' // eslint-disable-line no-throw-literal
      return c.text('ok', 201)
    })
    const key = newKey()
    await expect(post(app, '/x', key)).rejects.toBe('not an Error')
    expect((await post(app, '/x', key)).status).toBe(201)
    expect(runs).toBe(2)
  })

  it('a thrown HTTPException(4xx) is committed like the same 4xx returned', async () => {
    let runs = 0
    const app = new Hono().post('/x', once({ replayCache: false }), () => {
      runs++
      throw new HTTPException(404, { message: 'no such account' })
    })
    const key = newKey()
    expect((await post(app, '/x', key)).status).toBe(404)
    const again = await post(app, '/x', key)
    expect(again.status).toBe(404)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(1)
  })
})

describe('once() registered twice on one route (issue 7.5)', () => {
  it('the inner instance steps aside: the handler runs once and its reply (not a 409) is stored', async () => {
    let runs = 0
    const app = new Hono()
    app.use('/x/*', once())
    app.post('/x/y', once(), (c) => c.text(`run ${++runs}`, 201))
    const key = newKey()
    const res = await post(app, '/x/y', key)
    expect(res.status).toBe(201)
    const again = await post(app, '/x/y', key)
    expect(await again.text()).toBe('run 1')
    expect(again.headers.get('idempotent-replayed')).toBe('true')
  })
})

describe('a final commit that fails after the handler (issue 11.2)', () => {
  it('is logged with the request id; the client still gets its answer', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const failing = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: (id: DurableObjectId) => {
        const real = env.ONCE.get(id) as unknown as StableAreaApi
        return { admit: (r: Parameters<StableAreaApi['admit']>[0]) => real.admit(r), renew: () => Promise.resolve(true), commit: () => Promise.reject(new Error('boom')) }
      },
    } as unknown as typeof env.ONCE
    const app = new Hono().post('/x', once({ namespace: () => failing }), (c) => c.text('done', 201))
    const res = await post(app, '/x', newKey())
    expect(res.status).toBe(201)
    expect(error.mock.calls.some(([m]) => /was not stored; a retry may run the handler again/.test(String(m)))).toBe(true)
    error.mockRestore()
  })
})

describe('a key whose first attempt failed (issue 11.4)', () => {
  it('answers 422 to another body while the record lives, after a 5xx or a dead Worker', async () => {
    let runs = 0
    const app = new Hono().post('/x', once(), (c) => (++runs === 1 ? c.text('down', 503) : c.text('ok', 201)))
    const key = newKey()
    expect((await post(app, '/x', key, '{"amount":1}')).status).toBe(503)
    const other = await post(app, '/x', key, '{"amount":999}')
    expect(other.status).toBe(422)
    expect((await problemOf(other)).type).toBe(`${PROBLEM_BASE}key-reused`)
    expect((await post(app, '/x', key, '{"amount":1}')).status).toBe(201)
    expect(runs).toBe(2)
  })
})
