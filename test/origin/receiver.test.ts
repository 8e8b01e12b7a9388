import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import {
  memoryStore,
  ONCE_HEADERS,
  onceReceiver,
  PROBLEM_BASE,
  type MemoryTx,
  type ReceiverStore,
  type ReceiverVariables,
} from '../../src/origin/index.js'
import { signedHeaders } from './sign.js'

/** An origin on the memory store: `POST /accounts/:id/deposits` keeps balances in a map, committed through `tx.onCommit`. */
function bank(options: { secrets?: Record<string, string> } = {}) {
  const balances = new Map<string, number>()
  const store = memoryStore()
  const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
  let runs = 0
  app.use('/accounts/*', onceReceiver({ store, ...options }))
  app.post('/accounts/:id/deposits', async (c) => {
    runs++
    const id = c.req.param('id')
    const { amount } = await c.req.json<{ amount: number }>()
    // Computed when it commits: deposits of other request ids run concurrently.
    c.var.receiver.tx.onCommit(() => balances.set(id, (balances.get(id) ?? 0) + amount))
    if (c.req.header('x-fail')) return c.json({ error: 'later' }, 503)
    return c.json({ id, deposited: amount }, 201)
  })
  app.post('/accounts/:id/forward', async (c) => new Response(c.req.raw.body, { status: 201 }))
  const post = (path: string, headers: Record<string, string>, body = '{"amount":5}') => app.request(path, { method: 'POST', headers, body })
  return { app, store, balances, post, runs: () => runs }
}

describe('onceReceiver() options', () => {
  const store = memoryStore()
  it.each([
    [{}, /store: expected a ReceiverStore/],
    [{ store: {} }, /store: expected a ReceiverStore/],
    [{ store, secret: 'a-literal-secret-0123' }, /secret: replaced by secrets: \{ \[keyid\]: secret \}/],
    [{ store, toleranceSeconds: 300 }, /toleranceSeconds: replaced by secrets/],
    [{ store, secrets: {} }, /secrets: expected 1 to 8 secrets/],
    [{ store, secrets: { k: '' } }, /secrets\.k: the secret is empty \(an environment variable that is not set, or set to nothing\?\)/],
    [{ store, secrets: { k: undefined } }, /secrets\.k: expected the secret as a string \(an environment variable that is not set gives undefined/],
    [{ store, secrets: ['s'] }, /secrets/],
    [{ store, secrets: { 'k\u00e9': 'secret' } }, /secrets/],
    [{ store, waitMs: -1 }, /waitMs: expected a number >= 0/],
    [{ store, waitMs: 1.5 }, /waitMs/],
    [{ store, maxBodyBytes: 0 }, /maxBodyBytes/],
    [{ store, methods: [] }, /methods/],
    [{ store, methods: ['PO ST'] }, /methods\.0/],
    [{ store, retries: 3 }, /retries: unrecognized option/],
  ])('refuses %j when built, naming the option', (options, message) => {
    expect(() => onceReceiver(options as never)).toThrow(TypeError)
    expect(() => onceReceiver(options as never)).toThrow(/^hono-once: invalid onceReceiver\(\) options: /)
    expect(() => onceReceiver(options as never)).toThrow(message)
  })

  it('accepts a store of your own that has the five methods', () => {
    const own: ReceiverStore<null> = {
      apply: async () => ({ kind: 'rolled-back' }),
      nextSequence: async () => 1,
      nextSequences: async () => ({}),
      applied: async () => [],
      prune: async () => 0,
    }
    expect(() => onceReceiver({ store: own, methods: ['post'], waitMs: 0, secrets: { old: 'old-secret-0123456789', new: 'new-secret-0123456789' }, maxBodyBytes: 1024 })).not.toThrow()
  })

  it('accepts a secret shorter than 16 characters for a rotation off it, warning by keyid (never the value), as the edge will not sign with it', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    expect(() => onceReceiver({ store, secrets: { 'old-short': 'abc123', 'new-long': 'n'.repeat(32) } })).not.toThrow()
    const said = warn.mock.calls.map(([m]) => String(m)).filter((m) => /shorter than 16/.test(m))
    expect(said).toHaveLength(1)
    expect(said[0]).toContain('secrets.old-short')
    expect(said[0]).not.toContain('abc123')
    warn.mockRestore()
  })
})

describe('onceReceiver on Workers with memoryStore()', () => {
  it('dedupes, and commits the handler’s tx.onCommit effects only with the record', async () => {
    const b = bank()
    const h = { [ONCE_HEADERS.requestId]: 'r-1' }
    expect((await b.post('/accounts/a/deposits', { ...h, 'x-fail': '1' })).status).toBe(503)
    expect(b.balances.get('a')).toBeUndefined()
    expect(await (await b.post('/accounts/a/deposits', h)).json()).toEqual({ id: 'a', deposited: 5 })
    expect(await (await b.post('/accounts/a/deposits', h)).json()).toEqual({ id: 'a', deposited: 5 })
    expect(b.balances.get('a')).toBe(5)
    expect(b.runs()).toBe(2)
  })

  it('leaves c.req.raw readable for a handler that forwards it, after the digest check read it', async () => {
    const secret = 'forwarding-secret-0123456789'
    const b = bank({ secrets: { ONCE_SIGNING_SECRET: secret } })
    const body = 'raw bytes \u00ff'
    const headers = await signedHeaders({ keyid: 'ONCE_SIGNING_SECRET', secret }, 'http://localhost/accounts/a/forward', { headers: { 'content-type': 'text/plain;charset=UTF-8', [ONCE_HEADERS.requestId]: 'r-f' }, body })
    const res = await b.post('/accounts/a/forward', headers, body)
    expect(res.status).toBe(201)
    expect(await res.text()).toBe(body)
  })

  it('exposes requestId, key, domain, sequence and attempt on c.var.receiver', async () => {
    const app = new Hono()
    app.post('/x', onceReceiver({ store: memoryStore() }), (c) => {
      const { requestId, key, domain, sequence, attempt } = c.var.receiver
      return c.json({ requestId, key, domain, sequence, attempt }, 201)
    })
    const res = await app.request('/x', {
      method: 'POST',
      headers: {
        [ONCE_HEADERS.requestId]: 'r-9',
        [ONCE_HEADERS.idempotencyKey]: '"k\\"1"',
        [ONCE_HEADERS.domain]: 'acct a',
        [ONCE_HEADERS.sequence]: '1',
        [ONCE_HEADERS.attempt]: '3',
      },
    })
    expect(await res.json()).toEqual({ requestId: 'r-9', key: 'k"1', domain: 'acct a', sequence: 1, attempt: 3 })
  })

  it('stores every header of an answer but the hop-by-hop ones (the one HOP_BY_HOP list) and Content-Length', async () => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.post('/x', onceReceiver({ store: memoryStore() }), () =>
      new Response('{}', { status: 201, headers: { 'x-ledger': 'main', 'proxy-authenticate': 'Basic realm="origin"', 'content-type': 'application/json' } }),
    )
    const send = () => app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-hop' } })
    // The first answer is the stored one too, so both say the same.
    for (const res of [await send(), await send()]) {
      expect(res.headers.get('x-ledger')).toBe('main')
      expect(res.headers.get('content-type')).toBe('application/json')
      expect(res.headers.get('proxy-authenticate')).toBeNull()
    }
  })

  it('answers sequence-pruned for an applied slot whose record was pruned, and never runs it again', async () => {
    const b = bank()
    const h = (r: string, seq: number) => ({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: 'a', [ONCE_HEADERS.sequence]: String(seq) })
    await b.post('/accounts/a/deposits', h('r1', 1))
    await b.store.prune(Date.now() + 1)
    const res = await b.post('/accounts/a/deposits', h('r1', 1))
    expect(res.status).toBe(409)
    expect(((await res.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}sequence-pruned`)
    expect(b.runs()).toBe(1)
    expect((await b.post('/accounts/a/deposits', h('r2', 2))).status).toBe(201)
  })

  it('never answers 500 to garbage Once-* headers and signatures (property)', async () => {
    const secret = 'garbage-secret-0123456789'
    const value = fc.oneof(
      fc.constantFrom('', '0', '1', '-1', '?1', '?0', '007', '1e3', ' ', 'null', 'r-1', 'once=("@method");created=1;expires=99999999999;keyid="k"', 'once=:AAAA:', 'sha-256=:AAAA:', 'once=(', 'sub="x"'),
      fc.string({ maxLength: 40 }),
      fc.integer().map(String),
      fc.stringMatching(/^[\x20-\x7e]{0,300}$/),
    )
    const names = [ONCE_HEADERS.requestId, ONCE_HEADERS.domain, ONCE_HEADERS.sequence, ONCE_HEADERS.noop, ONCE_HEADERS.attempt, ONCE_HEADERS.signatureInput, ONCE_HEADERS.signature, ONCE_HEADERS.contentDigest, ONCE_HEADERS.principal]
    const headersArb = fc.dictionary(fc.constantFrom(...names), value, { maxKeys: names.length })
    for (const withSecret of [false, true]) {
      // A handler that cannot fail itself: any 500 would be the receiver's.
      const app = new Hono()
      app.use('*', onceReceiver({ store: memoryStore(), ...(withSecret ? { secrets: { k: secret } } : {}) }))
      app.all('*', (c) => c.json({ ok: true }, 201))
      await fc.assert(
        fc.asyncProperty(headersArb, fc.constantFrom('POST', 'GET', 'DELETE'), fc.string({ maxLength: 30 }), async (raw, method, body) => {
          const headers = new Headers()
          for (const [name, v] of Object.entries(raw)) {
            try {
              headers.set(name, v)
            } catch {
              // Not a legal header value: no client could send it.
            }
          }
          const res = await app.request('/accounts/a/deposits', { method, headers, ...(method === 'GET' ? {} : { body }) })
          expect(res.status).toBeLessThan(500)
          if (res.status >= 400) expect(res.headers.get('content-type')).toMatch(/json/)
        }),
        { numRuns: 300 },
      )
    }
  })
})
