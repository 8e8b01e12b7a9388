import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { bank, newKey, problemOf, readsBodyFirst, until } from '../helpers.js'

describe('identity: the Idempotency-Key header (DESIGN §7)', () => {
  it('answers 400 problem+json when the key is missing', async () => {
    const { post, effects } = bank()
    const res = await post(undefined)
    expect(res.status).toBe(400)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}key-missing`, title: expect.any(String), status: 400, instance: '/deposits', retryable: false })
    expect(p.detail).toMatch(/Idempotency-Key/)
    expect(effects.size).toBe(0)
  })

  it.each([
    ['empty sf-string', '""', /empty/],
    ['longer than 255', `"${'a'.repeat(256)}"`, /longer than 255/],
    ['unterminated sf-string', '"abc', /structured-field string/],
    ['non-ASCII', '"clé"', /structured-field string/],
    ['bare value with a space', 'a b', /structured-field string/],
  ])('answers 400 for a %s key', async (_name, header, detail) => {
    const { app, effects } = bank()
    const res = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': header }, body: '{}' }, env)
    expect(res.status).toBe(400)
    expect((await problemOf(res)).detail).toMatch(detail)
    expect(effects.size).toBe(0)
  })

  it('accepts a 255-character key and a bare UUID (as Stripe clients send)', async () => {
    const { app, effects } = bank()
    for (const header of [`"${'a'.repeat(255)}"`, crypto.randomUUID()]) {
      const res = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': header }, body: '{}' }, env)
      expect(res.status).toBe(201)
    }
    expect(effects.size).toBe(2)
  })

  it('treats "k" and k as the same key', async () => {
    const { app, effects } = bank()
    const key = newKey()
    await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    const again = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': key }, body: '{}' }, env)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })

  it('lets requests without a key through when required is false, and safe methods always', async () => {
    const { post, effects } = bank({ required: false })
    expect((await post(undefined)).status).toBe(201)
    expect((await post(undefined)).status).toBe(201)
    expect(effects.get('(no key)')).toBe(2)
    const app = new Hono()
    let gets = 0
    app.get('/x', once(), (c) => c.text(String(++gets)))
    expect(await (await app.request('/x', {}, env)).text()).toBe('1')
    expect(await (await app.request('/x', {}, env)).text()).toBe('2')
  })
})

describe('replay', () => {
  it('replays status, body and allowed headers byte for byte, with Idempotent-Replayed', async () => {
    const { post, effects } = bank({ replayCache: false })
    const key = newKey()
    const first = await post(key)
    const firstBody = await first.text()
    expect(first.status).toBe(201)
    expect(first.headers.get('set-cookie')).toBe('session=abc')
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    for (let i = 0; i < 4; i++) {
      const again = await post(key)
      expect(again.status).toBe(201)
      expect(await again.text()).toBe(firstBody)
      expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'))
      expect(again.headers.get('x-ledger')).toBe('main')
      expect(again.headers.get('set-cookie')).toBeNull()
      expect(again.headers.get('idempotent-replayed')).toBe('true')
    }
    expect(effects.get(key)).toBe(1)
  })

  it('replays binary bodies exactly, from the isolate cache and from the object', async () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256)
    for (const replayCache of [undefined, false] as const) {
      const app = new Hono()
      let runs = 0
      app.put('/blob', once({ replayCache }), () => {
        runs++
        return new Response(bytes, { status: 200, headers: { 'content-type': 'application/octet-stream' } })
      })
      const key = newKey()
      const put = () => app.request('/blob', { method: 'PUT', headers: { 'idempotency-key': key } }, env)
      await put()
      const again = new Uint8Array(await (await put()).arrayBuffer())
      expect(again).toEqual(bytes)
      expect(runs).toBe(1)
    }
  })

  it('replays only the listed headers when replayHeaders is set, Set-Cookie included if listed', async () => {
    const { post } = bank({ replayHeaders: ['content-type', 'set-cookie'] })
    const key = newKey()
    await post(key)
    const again = await post(key)
    expect(again.headers.get('set-cookie')).toBe('session=abc')
    expect(again.headers.get('x-ledger')).toBeNull()
    expect(again.headers.get('content-type')).toMatch(/json/)
  })

  it('replays each allowed multi-value header exactly once, in order (issue 7.8)', async () => {
    for (const replayCache of [undefined, false] as const) {
      const app = new Hono()
      app.post('/login', once({ replayHeaders: ['set-cookie', 'content-type'], replayCache }), () => {
        const headers = new Headers({ 'content-type': 'text/plain' })
        for (const c of ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']) headers.append('set-cookie', c)
        return new Response('hi', { status: 201, headers })
      })
      const key = newKey()
      const send = () => app.request('/login', { method: 'POST', headers: { 'idempotency-key': key } }, env)
      expect((await send()).headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure'])
      const again = await send()
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(again.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure'])
    }
  })

  it('stores replies larger than one SQLite row over several rows and replays them whole', async () => {
    const big = 'x'.repeat(2.5 * 1024 * 1024)
    const app = new Hono()
    let runs = 0
    app.post('/report', once({ replayCache: false }), (c) => {
      runs++
      return c.text(big + runs)
    })
    const key = newKey()
    const post = () => app.request('/report', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    expect(await (await post()).text()).toBe(big + '1')
    expect(await (await post()).text()).toBe(big + '1')
    expect(runs).toBe(1)
  })

  it('never runs again when a reply is over maxReplyBytes; duplicates get a clear problem', async () => {
    const app = new Hono()
    let runs = 0
    app.post('/huge', once({ maxReplyBytes: 1000, replayCache: false }), (c) => {
      runs++
      return c.text('y'.repeat(5000), 201)
    })
    const key = newKey()
    const post = () => app.request('/huge', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    const first = await post()
    expect(first.status).toBe(201)
    expect((await first.text()).length).toBe(5000)
    const again = await post()
    expect(again.status).toBe(500)
    const p = await problemOf(again)
    expect(p.type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(p.detail).toMatch(/status 201.*maxReplyBytes/)
    expect(runs).toBe(1)
  })
})

describe('fingerprint and scope', () => {
  it('answers 422 when a key is reused with a different body, path or method', async () => {
    const { post, effects } = bank()
    const key = newKey()
    await post(key, { amount: 100 })
    const res = await post(key, { amount: 999 })
    expect(res.status).toBe(422)
    expect(await problemOf(res)).toMatchObject({ status: 422, idempotency_key: key, retryable: false, type: `${PROBLEM_BASE}key-reused` })
    expect(effects.get(key)).toBe(1)
  })

  it('answers 422 from the isolate cache too', async () => {
    const { post } = bank()
    const key = newKey()
    await post(key, { amount: 1 })
    await post(key, { amount: 1 }) // now cached
    expect((await post(key, { amount: 2 })).status).toBe(422)
  })

  it('normalises JSON key order when asked to', async () => {
    const { post, effects } = bank({ fingerprint: { normalizeJson: true } })
    const key = newKey()
    await post(key, { amount: 1, currency: 'EUR' })
    const again = await post(key, { currency: 'EUR', amount: 1 })
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
    const strict = bank()
    await strict.post(key, { amount: 1, currency: 'EUR' })
    expect((await strict.post(key, { currency: 'EUR', amount: 1 })).status).toBe(422)
  })

  it('includes chosen headers in the fingerprint', async () => {
    const { post } = bank({ fingerprint: { headers: ['x-account'] } })
    const key = newKey()
    await post(key, {}, { 'x-account': 'a' })
    expect((await post(key, {}, { 'x-account': 'b' })).status).toBe(422)
  })

  it('keeps tenants apart: the same key under two Authorization headers runs twice', async () => {
    const { post, effects } = bank({ replayCache: false })
    const key = newKey()
    const alice = await post(key, { amount: 1 }, { authorization: 'Bearer alice' })
    const bob = await post(key, { amount: 2 }, { authorization: 'Bearer bob' })
    expect(alice.status).toBe(201)
    expect(bob.status).toBe(201) // not 422: bob never sees alice's record
    expect(bob.headers.get('idempotent-replayed')).toBeNull()
    expect(effects.get(key)).toBe(2)
    expect((await post(key, { amount: 1 }, { authorization: 'Bearer alice' })).headers.get('idempotent-replayed')).toBe('true')
  })

  it('uses a custom scope function', async () => {
    const { post, effects } = bank({ scope: (c) => c.req.header('x-tenant') ?? 'anon' })
    const key = newKey()
    await post(key, {}, { 'x-tenant': 't1' })
    await post(key, {}, { 'x-tenant': 't2' })
    await post(key, {}, { 'x-tenant': 't1' })
    expect(effects.get(key)).toBe(2)
  })
})

describe('commit point: what is final', () => {
  it.each([
    ['5xx answer', 'fail', 503],
    ['thrown error', 'throw', 500],
  ] as const)('releases the key after a %s, so a retry runs again', async (_name, mode, status) => {
    const { post, effects } = bank()
    const key = newKey()
    expect((await post(key, undefined, { 'x-mode': mode })).status).toBe(status)
    const retry = await post(key)
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBeNull()
    expect(effects.get(key)).toBe(1)
  })

  it.each([408, 429])('releases the key after a %i', async (status) => {
    const app = new Hono()
    let runs = 0
    app.post('/x', once(), (c) => (++runs === 1 ? c.text('later', status as 429) : c.text('done', 201)))
    const key = newKey()
    const post = () => app.request('/x', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    expect((await post()).status).toBe(status)
    expect((await post()).status).toBe(201)
    expect(runs).toBe(2)
  })

  it('commits a final 4xx and replays it', async () => {
    const { post } = bank()
    const key = newKey()
    expect((await post(key, {}, { 'x-mode': 'bad-request' })).status).toBe(400)
    const again = await post(key, {}, { 'x-mode': 'ok' })
    expect(again.status).toBe(400)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
  })

  it('commit(response) is the roll-forward point: a later failure still answers and replays the committed reply', async () => {
    const app = new Hono()
    let deposits = 0
    app.post('/x', once({ replayCache: false }), async (c) => {
      deposits++
      await c.var.once.commit(c.json({ deposited: true }, 201))
      throw new Error('e-mail service down')
    })
    const key = newKey()
    const post = () => app.request('/x', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    const first = await post()
    expect(first.status).toBe(201)
    expect(await first.json()).toEqual({ deposited: true })
    const again = await post()
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(deposits).toBe(1)
  })

  it('commit() without a response makes whatever the handler returns final, even a 5xx', async () => {
    const app = new Hono()
    let deposits = 0
    app.post('/x', once({ replayCache: false }), async (c) => {
      deposits++
      await c.var.once.commit()
      return c.text('applied, but the receipt printer is down', 503)
    })
    const key = newKey()
    const post = () => app.request('/x', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    expect((await post()).status).toBe(503)
    const again = await post()
    expect(again.status).toBe(503)
    expect(await again.text()).toBe('applied, but the receipt printer is down')
    expect(deposits).toBe(1)
  })

  it('refuses a second commit()', async () => {
    const app = new Hono()
    let error = ''
    app.post('/x', once(), async (c) => {
      await c.var.once.commit()
      await c.var.once.commit().catch((e: Error) => (error = e.message))
      return c.text('ok')
    })
    await app.request('/x', { method: 'POST', headers: { 'idempotency-key': newKey() } }, env)
    expect(error).toMatch(/already called/)
  })
})

describe('the request the handler sees', () => {
  it('keeps the body readable from c.req.raw, for handlers that forward the request', async () => {
    const app = new Hono()
    app.post('/proxy', once(), async (c) => {
      const forwarded = new Request('http://origin.test/x', c.req.raw)
      return c.json({ raw: await forwarded.text(), parsed: await c.req.json<unknown>() }, 201)
    })
    const res = await app.request('/proxy', { method: 'POST', headers: { 'idempotency-key': newKey() }, body: '{"a":1}' }, env)
    expect(await res.json()).toEqual({ raw: '{"a":1}', parsed: { a: 1 } })
  })

  it('gives the handler the request the app assigned to c.req.raw before anything read it', async () => {
    const app = new Hono()
    app.post('/seen', once(), async (c) => {
      c.req.raw = new Request('http://localhost/other', { method: 'PUT', headers: { 'x-a': '1' }, body: 'replaced' })
      return c.json({ method: c.req.method, url: c.req.url, a: c.req.header('x-a'), body: await c.req.raw.text() }, 201)
    })
    const res = await app.request('/seen', { method: 'POST', headers: { 'idempotency-key': newKey() }, body: 'sent' }, env)
    expect(await res.json()).toEqual({ method: 'PUT', url: 'http://localhost/other', a: '1', body: 'replaced' })
  })

  // Review s37b: a body logger before a gated GET left once() a body to give back, and no GET can carry one.
  it('runs a gated GET once per key when middleware before once() read its (empty) body', async () => {
    let effects = 0
    const app = new Hono()
    app.use(async (c, next) => {
      await c.req.text()
      await next()
    })
    app.get('/report', once({ methods: ['GET', 'POST'] }), (c) => {
      effects++
      return c.json({ q: c.req.query('q'), method: c.req.raw.method }, 200)
    })
    const key = newKey()
    const answers: unknown[] = []
    for (let i = 0; i < 2; i++) {
      const res = await app.request('/report?q=1', { headers: { 'idempotency-key': key } }, env)
      answers.push({ status: res.status, body: await res.json() })
    }
    expect({ answers, effects }).toEqual({ answers: [{ status: 200, body: { q: '1', method: 'GET' } }, { status: 200, body: { q: '1', method: 'GET' } }], effects: 1 })
  })

  // once() makes the handler's c.req.raw when it is first read (a replay never runs the handler): whichever way the
  // handler reads it, and in whatever order, it is the request as sent.
  it('gives the handler the request as sent through c.req.raw, whatever it reads first (property)', async () => {
    const reads = ['stream', 'bytes', 'headers-then-bytes', 'assign-then-read', 'same-object'] as const
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 2048 }),
        fc.constantFrom(...reads),
        fc.stringMatching(/^[a-z0-9]{1,16}$/),
        async (bytes, read, extra) => {
          const app = new Hono()
          app.post('/seen', once(), async (c) => {
            let raw = c.req.raw
            if (read === 'headers-then-bytes') expect(c.req.raw.headers.get('x-extra')).toBe(extra)
            if (read === 'assign-then-read') {
              c.req.raw = new Request(c.req.raw, { headers: { 'x-extra': extra, 'x-assigned': '1' } })
              expect(c.req.raw.headers.get('x-assigned')).toBe('1')
              raw = c.req.raw
            }
            if (read === 'same-object') expect(c.req.raw).toBe(raw)
            const body = new Uint8Array(read === 'stream' ? await new Response(raw.body).arrayBuffer() : await raw.arrayBuffer())
            return c.json({ method: raw.method, url: raw.url, extra: raw.headers.get('x-extra'), length: body.byteLength, same: body.every((b, i) => b === bytes[i]) }, 201)
          })
          const res = await app.request('/seen?q=1', { method: 'POST', headers: { 'idempotency-key': newKey(), 'x-extra': extra }, body: bytes }, env)
          expect(res.status).toBe(201)
          const seen = (await res.json()) as { method: string; url: string; extra: string; length: number; same: boolean }
          expect(seen).toEqual({ method: 'POST', url: 'http://localhost/seen?q=1', extra, length: bytes.byteLength, same: true })
        },
      ),
      { numRuns: 40 },
    )
  })
})

describe('onDuplicate: the redundant-message handler', () => {
  it('stores arguments instead of the body and rebuilds the reply from them', async () => {
    const invoices = new Map<string, string>()
    const app = new Hono()
    app.post(
      '/invoices',
      once({ replayCache: false, onDuplicate: (args, c) => c.json({ invoice: invoices.get(String((args as { id: string }).id)), rebuilt: c.var.once.replayed }, 201) }),
      async (c) => {
        const id = `inv_${invoices.size + 1}`
        invoices.set(id, 'PDF…')
        const res = c.json({ invoice: 'PDF…', rebuilt: false }, 201)
        await c.var.once.commit(res, { args: { id } })
        return res
      },
    )
    const key = newKey()
    const post = () => app.request('/invoices', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    expect(await (await post()).json()).toEqual({ invoice: 'PDF…', rebuilt: false })
    const again = await post()
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.json()).toEqual({ invoice: 'PDF…', rebuilt: true })
    expect(invoices.size).toBe(1)
  })

  it('commit({ args }) without onDuplicate stores the reply itself: a retry replays it, the handler never runs twice', async () => {
    const app = new Hono()
    let runs = 0
    app.post('/x', once({ replayCache: false }), async (c) => {
      runs++
      const res = c.text(`receipt ${runs}`, 201)
      await c.var.once.commit(res, { args: { receipt: runs } })
      return res
    })
    const key = newKey()
    const post = () => app.request('/x', { method: 'POST', headers: { 'idempotency-key': key } }, env)
    expect(await (await post()).text()).toBe('receipt 1')
    const again = await post()
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe('receipt 1')
    expect(runs).toBe(1)
  })
})

describe('in-flight duplicates', () => {
  it('waits for the original and replays its reply (inFlight: wait)', async () => {
    const { post, hold, effects } = bank()
    const key = newKey()
    const open = hold(key)
    const first = post(key)
    await until(key, (r) => r?.state === 'in_flight')
    const second = post(key)
    // The duplicate is blocked inside the object until the first finishes.
    await until(key, (r) => r?.waiters === 1)
    open()
    const [a, b] = await Promise.all([first, second])
    expect(a.status).toBe(201)
    expect(b.status).toBe(201)
    expect(await b.text()).toBe(await a.text())
    expect(b.headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })

  it('answers 409 with Retry-After in reject mode, and after waitMs in wait mode', async () => {
    for (const options of [{ inFlight: 'reject' as const }, { inFlight: 'wait' as const, waitMs: 50 }]) {
      const { post, hold, effects } = bank(options)
      const key = newKey()
      const open = hold(key)
      const first = post(key)
      await until(key, (r) => r?.state === 'in_flight')
      const second = await post(key)
      expect(second.status).toBe(409)
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(await problemOf(second)).toMatchObject({ status: 409, retryable: true, idempotency_key: key })
      open()
      expect((await first).status).toBe(201)
      expect(effects.get(key)).toBe(1)
    }
  })

  it('runs the handler once for 50 concurrent identical requests, and all 50 answers are identical', async () => {
    const { post, effects } = bank({ waitMs: 20_000 })
    const key = newKey()
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(key)))
    const bodies = await Promise.all(answers.map((r) => r.text()))
    expect(effects.get(key)).toBe(1)
    expect(answers.every((r) => r.status === 201)).toBe(true)
    expect(new Set(bodies).size).toBe(1)
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1)
  })
})

describe('limits and faults', () => {
  it('answers 413 for a body over maxBodyBytes, with or without Content-Length', async () => {
    const { app, effects } = bank({ maxBodyBytes: 100 })
    const big = 'x'.repeat(101)
    const withLength = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': newKey() }, body: big }, env)
    expect(withLength.status).toBe(413)
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big))
        controller.close()
      },
    })
    const chunked = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': newKey() }, body: stream, duplex: 'half' } as RequestInit, env)
    expect(chunked.status).toBe(413)
    expect((await problemOf(chunked)).type).toBe(`${PROBLEM_BASE}body-too-large`)
    expect(effects.size).toBe(0)
  })

  it('answers 503, retryable, when the stable area cannot be reached, and runs nothing', async () => {
    const broken = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: () => ({ admit: () => Promise.reject(new Error('Network connection lost.')) }),
    } as unknown as typeof env.ONCE
    const { post, effects } = bank({ namespace: () => broken })
    const res = await post(newKey())
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await problemOf(res)).toMatchObject({ status: 503, retryable: true })
    expect(effects.size).toBe(0)
  })

  it('answers a clear 500, running nothing, when a scope or fingerprint function returns a non-string', async () => {
    for (const options of [{ scope: () => undefined as unknown as string }, { fingerprint: () => 42 as unknown as string }]) {
      const { post, effects } = bank(options)
      const res = await post(newKey())
      expect(res.status).toBe(500)
      expect((await problemOf(res)).detail).toMatch(/must return a (non-empty )?string/)
      expect(effects.size).toBe(0)
    }
  })

  it('answers a clear 500 when no namespace is bound', async () => {
    const app = new Hono()
    app.post('/x', once(), (c) => c.text('never'))
    const res = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': 'k' } }, {})
    expect(res.status).toBe(500)
    expect((await problemOf(res)).detail).toMatch(/bind the StableArea class as ONCE/)
  })
})

describe('options are validated when once() is called', () => {
  it.each([
    [{ ttlSeconds: -1 }, /ttlSeconds/],
    [{ leaseMs: 'long' }, /leaseMs/],
    [{ inFlight: 'queue' }, /inFlight/],
    [{ methods: [] }, /methods/],
    [{ methods: ['PO ST'] }, /methods/],
    [{ shards: 0 }, /shards/],
    [{ scope: 'tenant' }, /scope: expected a function/],
    [{ fingerprint: { header: ['x'] } }, /header/],
    [{ ttlSecond: 10 }, /ttlSecond/],
    [{ replayCache: true }, /replayCache/],
  ])('rejects %j', (options, message) => {
    expect(() => once(options as never)).toThrow(message)
    expect(() => once(options as never)).toThrow(TypeError)
  })
})

describe('shards', () => {
  it('spreads keys over objects and still dedupes each', async () => {
    const { post, effects } = bank({ shards: 4, replayCache: false })
    const keys = Array.from({ length: 12 }, newKey)
    for (const key of keys) await post(key)
    for (const key of keys) expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
    expect([...effects.values()]).toEqual(keys.map(() => 1))
  })
})

describe('a body read by middleware before once()', () => {
  // A validator (or any c.req.json()/text()/parseBody()) before once() spends the request stream; once() takes
  // the body from Hono's cache instead, with or without Content-Length (it threw "locked to a reader" before).
  const chunked = (text: string) =>
    new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text))
        controller.close()
      },
    })
  const send = (app: Hono<{ Bindings: Cloudflare.Env }>, key: string, body: string, framing: 'length' | 'chunked') =>
    app.request(
      '/deposits',
      {
        method: 'POST',
        headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...(framing === 'length' ? { 'content-length': String(body.length) } : {}) },
        body: framing === 'length' ? body : chunked(body),
        duplex: 'half',
      } as RequestInit,
      env,
    )

  it.each([
    ['json', 'length'],
    ['json', 'chunked'],
    ['text', 'length'],
    ['text', 'chunked'],
    ['arrayBuffer', 'chunked'],
  ] as const)('after c.req.%s() with %s framing: runs once, replays, 422 for another body, 413 over the limit', async (read, framing) => {
    let runs = 0
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post(
      '/deposits',
      readsBodyFirst(read),
      once({ maxBodyBytes: 40, unscoped: 'shared' }),
      async (c) => {
        runs++
        return c.json({ amount: (await c.req.json<{ amount: number }>()).amount, run: runs }, 201)
      },
    )
    const key = newKey()
    const first = await send(app, key, '{"amount":7}', framing)
    expect(first.status).toBe(201)
    expect(await first.json()).toEqual({ amount: 7, run: 1 })
    const again = await send(app, key, '{"amount":7}', framing)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await send(app, key, '{"amount":8}', framing)).status).toBe(422)
    const big = await send(app, newKey(), `{"amount":7,"pad":"${'x'.repeat(40)}"}`, framing)
    expect(big.status).toBe(413)
    expect(runs).toBe(1)
  })
})

describe("the body behind once(): the handler's c.req.text()/json() read what Response would", () => {
  it.each([
    ['plain JSON', [...new TextEncoder().encode('{"amount":7}')]],
    ['a BOM before the JSON', [0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"amount":7}')]],
    ['bytes that are not UTF-8', [0x7b, 0xff, 0xfe, 0x7d]],
    ['an empty body', []],
  ])('%s', async (_name, bytes) => {
    const body = new Uint8Array(bytes)
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post('/echo', once({ unscoped: 'shared' }), async (c) => {
      const text = await c.req.text()
      let json: unknown
      try {
        json = await c.req.json()
      } catch (err) {
        json = `error: ${(err as Error).name}`
      }
      return c.json({ text, json, raw: await c.req.raw.text() })
    })
    const res = await app.request('/echo', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body }, env)
    const text = await new Response(body).text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      json = `error: ${(err as Error).name}`
    }
    expect(await res.json()).toEqual({ text, json, raw: text })
  })
})
