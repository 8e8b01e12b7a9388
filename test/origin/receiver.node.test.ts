import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import type { AddressInfo } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { ONCE_HEADERS, onceReceiver, RECEIVER_PROBLEM_BASE, signOnceRequest, sqliteStore, type ReceiverOptions, type ReceiverVariables } from '../../src/origin/index.js'

type Mode = 'ok' | 'fail' | 'throw' | 'reject' | 'too-many'

/**
 * A real origin on 127.0.0.1: `POST /effects` writes one row per run through
 * `c.var.receiver.tx`, then answers as `x-mode` says (after the write, so a
 * rollback is visible). `effects(id)` counts the committed rows: the effects.
 */
async function startTestOrigin(options: Omit<ReceiverOptions<DatabaseSync>, 'store'> = {}) {
  const db = new DatabaseSync(':memory:')
  db.exec('CREATE TABLE effects (request_id TEXT, body TEXT)')
  const store = sqliteStore(db)
  const gates = new Map<string, Promise<void>>()
  let runs = 0
  const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
  app.onError((err, c) => c.text(`error: ${err.message}`, 500))
  app.use('*', onceReceiver({ store, gapWaitMs: 0, ...options }))
  app.get('/effects', async (c) => c.json({ total: await store.exclusive((conn) => Number(conn.prepare('SELECT COUNT(*) AS n FROM effects').get()?.n)) }))
  app.post('/effects', async (c) => {
    runs++
    const receiver = c.get('receiver') as ReceiverVariables<DatabaseSync>['receiver'] | undefined
    // The raw request, as a handler that forwards it would read it: the receiver must leave it unread.
    const body = await c.req.raw.text()
    const id = receiver?.requestId ?? '(none)'
    await gates.get(id)
    const write = (conn: DatabaseSync) => conn.prepare('INSERT INTO effects (request_id, body) VALUES (?, ?)').run(id, body)
    if (receiver) write(receiver.tx)
    else await store.exclusive(write)
    const mode = (c.req.header('x-mode') ?? 'ok') as Mode
    if (mode === 'fail') return c.json({ error: 'ledger unavailable' }, 503)
    if (mode === 'too-many') return c.json({ error: 'slow down' }, 429)
    if (mode === 'throw') throw new Error('ledger exploded')
    if (mode === 'reject') return c.json({ error: 'amount missing' }, 400)
    return c.json({ id, domain: receiver?.domain ?? null, sequence: receiver?.sequence ?? null, attempt: receiver?.attempt ?? null, body, run: runs }, 201, {
      'x-ledger': 'main',
      'set-cookie': 'a=1',
    })
  })
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const origin = {
    url,
    store,
    runs: () => runs,
    effects: (id: string) => Number(db.prepare('SELECT COUNT(*) AS n FROM effects WHERE request_id = ?').get(id)?.n),
    /** Holds the handler of request `id` until the returned function is called. */
    hold(id: string): () => void {
      let open!: () => void
      gates.set(id, new Promise<void>((r) => (open = r)))
      return () => {
        gates.delete(id)
        open()
      }
    },
    post(headers: Record<string, string>, body = '{"amount":5}', path = '/effects') {
      return fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  running.push(origin)
  return origin
}

const running: { close(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.close()))
})

const id = () => `r-${crypto.randomUUID()}`
/** Polls until `check` holds (the held handler is running), so tests do not depend on timing. */
const until = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5))
  expect(check()).toBe(true)
}
const problemOf = async (res: Response) => {
  expect(res.headers.get('content-type')).toBe('application/problem+json')
  return (await res.json()) as { type: string; status: number; detail: string; retryable: boolean; expected_sequence?: number }
}

describe('onceReceiver: dedupe by Once-Request-Id', () => {
  it('a client that stalls mid-body does not hold up other requests (the body is read before the store is taken)', async () => {
    const o = await startTestOrigin()
    const { connect } = await import('node:net')
    const socket = connect(Number(new URL(o.url).port), '127.0.0.1')
    await new Promise((r) => socket.once('connect', r))
    socket.write('POST /effects HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nonce-request-id: stalled\r\ncontent-length: 40\r\n\r\n{"amount":')
    await new Promise((r) => setTimeout(r, 100))
    const other = await o.post({ [ONCE_HEADERS.requestId]: id() }, '{"amount":5}').then((r) => r.status)
    expect(other).toBe(201)
    socket.destroy()
  })

  it('applies a request once; a repeat gets the same status, headers and bytes without running the handler', async () => {
    const o = await startTestOrigin()
    const r = id()
    const first = await o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.attempt]: '1' })
    const firstBody = await first.arrayBuffer()
    const again = await o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.attempt]: '2' })
    expect(again.status).toBe(201)
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(new Uint8Array(firstBody))
    expect(again.headers.get('content-type')).toBe('application/json')
    expect(again.headers.get('x-ledger')).toBe('main')
    expect(again.headers.get('set-cookie')).toBe('a=1')
    expect(o.effects(r)).toBe(1)
    expect(o.runs()).toBe(1)
    expect(JSON.parse(new TextDecoder().decode(firstBody))).toMatchObject({ id: r, attempt: 1 })
  })

  it('records a final 4xx too: the repeat replays it', async () => {
    const o = await startTestOrigin()
    const r = id()
    expect((await o.post({ [ONCE_HEADERS.requestId]: r, 'x-mode': 'reject' })).status).toBe(400)
    const again = await o.post({ [ONCE_HEADERS.requestId]: r })
    expect(again.status).toBe(400)
    expect(await again.json()).toEqual({ error: 'amount missing' })
    expect(o.runs()).toBe(1)
    expect(o.effects(r)).toBe(1)
  })

  it.each<[Mode, number]>([
    ['fail', 503],
    ['throw', 500],
    ['too-many', 429],
  ])('rolls back a %s (%d): no effect, no record; the retry runs it once', async (mode, status) => {
    const o = await startTestOrigin()
    const r = id()
    expect((await o.post({ [ONCE_HEADERS.requestId]: r, 'x-mode': mode })).status).toBe(status)
    expect(o.effects(r)).toBe(0)
    const retry = await o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.attempt]: '2' })
    expect(retry.status).toBe(201)
    expect((await o.post({ [ONCE_HEADERS.requestId]: r })).status).toBe(201)
    expect(o.effects(r)).toBe(1)
    expect(o.runs()).toBe(2)
  })

  it('lets a repeat that arrives while the first runs wait, then answers it with the stored result', async () => {
    const o = await startTestOrigin()
    const r = id()
    const release = o.hold(r)
    const first = o.post({ [ONCE_HEADERS.requestId]: r })
    await until(() => o.runs() === 1)
    const second = o.post({ [ONCE_HEADERS.requestId]: r })
    await new Promise((resolve) => setTimeout(resolve, 50))
    release()
    const [a, b] = await Promise.all([first, second])
    expect(a.status).toBe(201)
    expect(b.status).toBe(201)
    expect(await b.text()).toBe(await a.text())
    expect(o.effects(r)).toBe(1)
    expect(o.runs()).toBe(1)
  })

  it('answers 409 in-flight with Retry-After when the first runs longer than waitMs', async () => {
    const o = await startTestOrigin({ waitMs: 100 })
    const r = id()
    const release = o.hold(r)
    const first = o.post({ [ONCE_HEADERS.requestId]: r })
    await until(() => o.runs() === 1)
    const started = Date.now()
    const second = await o.post({ [ONCE_HEADERS.requestId]: r })
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    expect(second.status).toBe(409)
    expect(second.headers.get('retry-after')).toBe('1')
    const p = await problemOf(second)
    expect(p).toMatchObject({ type: `${RECEIVER_PROBLEM_BASE}in-flight`, retryable: true })
    release()
    expect((await first).status).toBe(201)
    expect(o.effects(r)).toBe(1)
  })

  it('without a secret, passes requests with no Once-Request-Id through untouched (every one runs)', async () => {
    const o = await startTestOrigin()
    expect((await o.post({})).status).toBe(201)
    expect((await o.post({})).status).toBe(201)
    expect(o.effects('(none)')).toBe(2)
  })

  it('keeps the body readable for the handler, also when the signature check read it', async () => {
    const secret = 'origin-secret-1234567890'
    const o = await startTestOrigin({ secret })
    const r = id()
    const body = '{"amount":7,"note":"ü"}'
    const signature = await signOnceRequest(secret, { method: 'POST', path: '/effects', requestId: r, body })
    const res = await o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.signature]: signature }, body)
    expect(res.status).toBe(201)
    expect((await res.json()).body).toBe(body)
  })
})

describe('onceReceiver: Once-Signature', () => {
  const secret = 'origin-secret-1234567890'
  const signed = async (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string, opts: { body?: string; path?: string; signPath?: string; signBody?: string; t?: number; key?: string } = {}) => {
    const body = opts.body ?? '{"amount":5}'
    const signature = await signOnceRequest(opts.key ?? secret, { method: 'POST', path: opts.signPath ?? '/effects', requestId: r, body: opts.signBody ?? body }, opts.t)
    return o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.signature]: signature }, body, opts.path ?? '/effects')
  }

  it('accepts a good signature, and dedupes an exact replay within the window (no second effect)', async () => {
    const o = await startTestOrigin({ secret })
    const r = id()
    const body = '{"amount":5}'
    const signature = await signOnceRequest(secret, { method: 'POST', path: '/effects', requestId: r, body })
    const headers = { [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.signature]: signature }
    const first = await o.post(headers, body)
    expect(first.status).toBe(201)
    const replay = await o.post(headers, body)
    expect(replay.status).toBe(201)
    expect(await replay.text()).toBe(await first.text())
    expect(o.effects(r)).toBe(1)
  })

  it.each([
    ['missing', async (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => o.post({ [ONCE_HEADERS.requestId]: r }), /missing/],
    ['garbage', async (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => o.post({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.signature]: 'v1=zz' }), /not "t=/],
    ['made with another secret', (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => signed(o, r, { key: 'not-the-secret' }), /does not match/],
    ['stale (6 minutes old)', (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => signed(o, r, { t: Math.floor(Date.now() / 1000) - 360 }), /tolerance/],
    ['from the future (6 minutes ahead)', (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => signed(o, r, { t: Math.floor(Date.now() / 1000) + 360 }), /tolerance/],
    ['over an altered body', (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => signed(o, r, { body: '{"amount":500}', signBody: '{"amount":5}' }), /does not match/],
    ['over an altered path', (o: Awaited<ReturnType<typeof startTestOrigin>>, r: string) => signed(o, r, { path: '/effects?x=1', signPath: '/effects' }), /does not match/],
  ])('refuses a signature %s with 401 problem+json and no effect', async (_name, send, detail) => {
    const o = await startTestOrigin({ secret })
    const r = id()
    const res = await send(o, r)
    expect(res.status).toBe(401)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${RECEIVER_PROBLEM_BASE}signature-invalid`, status: 401, retryable: false })
    expect(p.detail).toMatch(detail)
    expect(o.runs()).toBe(0)
  })

  it('refuses a signed request whose request id was changed (the id is signed)', async () => {
    const o = await startTestOrigin({ secret })
    const signature = await signOnceRequest(secret, { method: 'POST', path: '/effects', requestId: 'r-a', body: '{}' })
    const res = await o.post({ [ONCE_HEADERS.requestId]: 'r-b', [ONCE_HEADERS.signature]: signature }, '{}')
    expect(res.status).toBe(401)
    expect(o.runs()).toBe(0)
  })

  it('with a secret, refuses a deduped method without Once-Request-Id with 401 even when signed', async () => {
    const o = await startTestOrigin({ secret })
    const signature = await signOnceRequest(secret, { method: 'POST', path: '/effects', requestId: '', body: '{}' })
    const res = await o.post({ [ONCE_HEADERS.signature]: signature }, '{}')
    expect(res.status).toBe(401)
    expect((await problemOf(res)).type).toBe(`${RECEIVER_PROBLEM_BASE}request-id-missing`)
    expect(o.runs()).toBe(0)
  })

  it('checks safe methods too, then lets them through', async () => {
    const o = await startTestOrigin({ secret })
    expect((await fetch(`${o.url}/effects`)).status).toBe(401)
    const signature = await signOnceRequest(secret, { method: 'GET', path: '/effects', requestId: '' })
    const res = await fetch(`${o.url}/effects`, { headers: { [ONCE_HEADERS.signature]: signature } })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ total: 0 })
  })

  it('accepts any of several secrets (rotation)', async () => {
    const o = await startTestOrigin({ secret: ['new-secret-0123456789', secret] })
    expect((await signed(o, id())).status).toBe(201)
    expect((await signed(o, id(), { key: 'new-secret-0123456789' })).status).toBe(201)
    expect((await signed(o, id(), { key: 'retired-secret-0123456' })).status).toBe(401)
  })
})

describe('onceReceiver: ordering per domain (Once-Domain, Once-Sequence)', () => {
  const ordered = (domain: string, sequence: number | string, r: string, extra: Record<string, string> = {}) => ({
    [ONCE_HEADERS.requestId]: r,
    [ONCE_HEADERS.domain]: domain,
    [ONCE_HEADERS.sequence]: String(sequence),
    ...extra,
  })

  it('answers a gap with 409 and Once-Expected-Sequence, then applies 1 and 2 in order', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const [r1, r2] = [id(), id()]
    const early = await o.post(ordered(d, 2, r2))
    expect(early.status).toBe(409)
    expect(early.headers.get('once-expected-sequence')).toBe('1')
    expect(await problemOf(early)).toMatchObject({ type: `${RECEIVER_PROBLEM_BASE}sequence-gap`, expected_sequence: 1 })
    expect(o.runs()).toBe(0)
    expect((await o.post(ordered(d, 1, r1))).status).toBe(201)
    const second = await o.post(ordered(d, 2, r2))
    expect(second.status).toBe(201)
    expect(await second.json()).toMatchObject({ domain: d, sequence: 2 })
    expect(await o.store.applied(d)).toEqual([
      { domain: d, sequence: 1, requestId: r1, noop: false },
      { domain: d, sequence: 2, requestId: r2, noop: false },
    ])
    expect(await o.store.nextSequence(d)).toBe(3)
    const far = await o.post(ordered(d, 9, id()))
    expect(far.headers.get('once-expected-sequence')).toBe('3')
  })

  it('with gapWaitMs, a request that overtook its predecessor on the way waits for it instead of answering a gap', async () => {
    const o = await startTestOrigin({ gapWaitMs: 2000 })
    const d = `acct-${crypto.randomUUID()}`
    const [r1, r2] = [id(), id()]
    const early = o.post(ordered(d, 2, r2))
    await new Promise((r) => setTimeout(r, 100))
    const [first, second] = await Promise.all([o.post(ordered(d, 1, r1)), early])
    expect([first.status, second.status]).toEqual([201, 201])
    expect((await o.store.applied(d)).map((a) => a.requestId)).toEqual([r1, r2])
    // Nothing arrives for a missing sequence: the gap is answered once the wait runs out.
    const started = Date.now()
    const far = await o.post(ordered(d, 9, id()))
    expect(far.headers.get('once-expected-sequence')).toBe('3')
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900)
  })

  it('answers an old sequence with its stored result, and a different id in an applied slot with sequence-conflict', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const r1 = id()
    const first = await o.post(ordered(d, 1, r1))
    const firstText = await first.text()
    expect((await o.post(ordered(d, 2, id()))).status).toBe(201)
    const old = await o.post(ordered(d, 1, r1))
    expect(old.status).toBe(201)
    expect(await old.text()).toBe(firstText)
    const other = await o.post(ordered(d, 1, id()))
    expect(other.status).toBe(409)
    expect(other.headers.get('once-expected-sequence')).toBeNull()
    expect((await problemOf(other)).type).toBe(`${RECEIVER_PROBLEM_BASE}sequence-conflict`)
    // An applied request id arriving with another slot is a conflict too.
    const moved = await o.post(ordered(d, 3, r1))
    expect((await problemOf(moved)).type).toBe(`${RECEIVER_PROBLEM_BASE}sequence-conflict`)
    expect(o.runs()).toBe(2)
  })

  it('records a Once-Noop slot as applied without running the handler (204, replayed as such)', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const [r1, r2, r3] = [id(), id(), id()]
    expect((await o.post(ordered(d, 1, r1))).status).toBe(201)
    const noop = await o.post(ordered(d, 2, r2, { [ONCE_HEADERS.noop]: '?1' }))
    expect(noop.status).toBe(204)
    expect(o.runs()).toBe(1)
    expect(o.effects(r2)).toBe(0)
    expect((await o.post(ordered(d, 2, r2, { [ONCE_HEADERS.noop]: '?1' }))).status).toBe(204)
    expect((await o.post(ordered(d, 3, r3))).status).toBe(201)
    expect(await o.store.applied(d)).toEqual([
      { domain: d, sequence: 1, requestId: r1, noop: false },
      { domain: d, sequence: 2, requestId: r2, noop: true },
      { domain: d, sequence: 3, requestId: r3, noop: false },
    ])
    // A noop ahead of its turn is a gap like any other request.
    expect((await o.post(ordered(d, 9, id(), { [ONCE_HEADERS.noop]: '?1' }))).status).toBe(409)
  })

  it('applies one domain one request at a time: the next sequence waits for the running one instead of a gap', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const [r1, r2] = [id(), id()]
    const release = o.hold(r1)
    const first = o.post(ordered(d, 1, r1))
    await until(() => o.runs() === 1)
    const second = o.post(ordered(d, 2, r2))
    await new Promise((resolve) => setTimeout(resolve, 50))
    release()
    expect((await first).status).toBe(201)
    expect((await second).status).toBe(201)
    expect((await o.store.applied(d)).map((e) => e.requestId)).toEqual([r1, r2])
  })

  it('does not advance the sequence when the handler fails: the retry of the same slot applies it', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const r1 = id()
    expect((await o.post(ordered(d, 1, r1, { 'x-mode': 'fail' }))).status).toBe(503)
    expect(await o.store.nextSequence(d)).toBe(1)
    expect((await o.post(ordered(d, 2, id()))).headers.get('once-expected-sequence')).toBe('1')
    expect((await o.post(ordered(d, 1, r1))).status).toBe(201)
    expect(await o.store.nextSequence(d)).toBe(2)
    expect(o.effects(r1)).toBe(1)
  })

  it.each([
    ['a zero sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '0' }, /Once-Sequence/],
    ['a negative sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '-3' }, /Once-Sequence/],
    ['a non-numeric sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: 'three' }, /Once-Sequence/],
    ['a fractional sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1.5' }, /Once-Sequence/],
    ['a huge sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '99999999999999999999' }, /Once-Sequence/],
    ['a sequence without a domain', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.sequence]: '1' }, /Once-Domain/],
    ['a domain without a sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd' }, /Once-Sequence/],
    ['a sequence without a request id', { [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1' }, /Once-Request-Id/],
    ['a bad Once-Noop', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1', [ONCE_HEADERS.noop]: 'true' }, /Once-Noop/],
    ['a noop without a sequence', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.noop]: '?1' }, /Once-Noop/],
    ['a bad Once-Attempt', { [ONCE_HEADERS.requestId]: 'r', [ONCE_HEADERS.attempt]: 'first' }, /Once-Attempt/],
    ['a request id with spaces', { [ONCE_HEADERS.requestId]: 'r 1' }, /Once-Request-Id/],
    ['a request id too long', { [ONCE_HEADERS.requestId]: 'r'.repeat(256) }, /Once-Request-Id/],
  ])('answers 400 problem+json naming the header for %s', async (_name, headers, detail) => {
    const o = await startTestOrigin()
    const res = await o.post(headers)
    expect(res.status).toBe(400)
    const p = await problemOf(res)
    expect(p.type).toBe(`${RECEIVER_PROBLEM_BASE}bad-request`)
    expect(p.detail).toMatch(detail)
    expect(o.runs()).toBe(0)
  })
})
