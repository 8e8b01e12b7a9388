import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import type { AddressInfo } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ONCE_HEADERS, onceReceiver, PROBLEM_BASE, sqliteStore, type ReceiverOptions, type ReceiverVariables, type SigningKey } from '../../src/origin/index.js'
import { signedHeaders } from './sign.js'

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
  app.on(['POST', 'PATCH'], '/effects', async (c) => {
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
    return c.json({ id, domain: receiver?.domain ?? null, sequence: receiver?.sequence ?? null, attempt: receiver?.attempt ?? null, principal: receiver?.principal ?? null, body, run: runs }, 201, {
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
    post(headers: Record<string, string>, body = '{"amount":5}', path = '/effects', method = 'POST') {
      return fetch(url + path, { method, headers: { 'content-type': 'application/json', ...headers }, body })
    },
    /** Signs as the edge does, then posts. */
    async signed(key: SigningKey, headers: Record<string, string>, body = '{"amount":5}', opts: { path?: string; method?: string; nowSeconds?: number; bodyForDigest?: string } = {}) {
      const path = opts.path ?? '/effects'
      const method = opts.method ?? 'POST'
      const all = await signedHeaders(key, url + path, { method, headers: { 'content-type': 'application/json', ...headers }, body }, opts)
      return fetch(url + path, { method, headers: all, body })
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
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}in-flight`, retryable: true })
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

  it('keeps the body readable for the handler, also when the digest check read it', async () => {
    const o = await startTestOrigin({ secrets })
    const body = '{"amount":7,"note":"ü"}'
    const res = await o.signed(key, { [ONCE_HEADERS.requestId]: id() }, body)
    expect(res.status).toBe(201)
    expect((await res.json()).body).toBe(body)
  })
})

const key: SigningKey = { keyid: 'ONCE_SIGNING_SECRET', secret: 'origin-secret-1234567890' }
const secrets = { [key.keyid]: key.secret }
type TestOrigin = Awaited<ReturnType<typeof startTestOrigin>>

describe('onceReceiver: RFC 9421 signatures and Content-Digest', () => {
  const now = () => Math.floor(Date.now() / 1000)

  it('accepts a good signature, and dedupes an exact replay within its lifetime (no second effect)', async () => {
    const o = await startTestOrigin({ secrets })
    const r = id()
    const headers = await signedHeaders(key, `${o.url}/effects`, { headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r }, body: '{"amount":5}' })
    const first = await fetch(`${o.url}/effects`, { method: 'POST', headers, body: '{"amount":5}' })
    expect(first.status).toBe(201)
    expect(first.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    const replay = await fetch(`${o.url}/effects`, { method: 'POST', headers, body: '{"amount":5}' })
    expect(replay.status).toBe(201)
    expect(replay.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect(await replay.text()).toBe(await first.text())
    expect(o.effects(r)).toBe(1)
  })

  it.each<[string, (o: TestOrigin, r: string) => Promise<Response>, RegExp]>([
    ['missing', (o, r) => o.post({ [ONCE_HEADERS.requestId]: r }), /no Signature-Input/],
    ['garbage', (o, r) => o.post({ [ONCE_HEADERS.requestId]: r, 'signature-input': 'once=(((', signature: 'once=:AA==:' }), /structured-field/],
    ['made with another secret', (o, r) => o.signed({ ...key, secret: 'not-the-secret-at-all' }, { [ONCE_HEADERS.requestId]: r }), /does not match/],
    ['with an unknown keyid', (o, r) => o.signed({ keyid: 'retired', secret: key.secret }, { [ONCE_HEADERS.requestId]: r }), /no secret with keyid "retired"/],
    ['expired (6 minutes old)', (o, r) => o.signed(key, { [ONCE_HEADERS.requestId]: r }, undefined, { nowSeconds: now() - 360 }), /expired/],
    ['from the future (2 minutes ahead)', (o, r) => o.signed(key, { [ONCE_HEADERS.requestId]: r }, undefined, { nowSeconds: now() + 120 }), /more than 60 s/],
    ['over an altered path', (o, r) => signedHeaders(key, `${o.url}/effects`, { headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r }, body: '{}' }).then((h) => fetch(`${o.url}/other`, { method: 'POST', headers: h, body: '{}' })), /does not match/],
  ])('refuses a signature %s with 401 problem+json, Once-Applied: ?0 and no effect', async (_name, send, detail) => {
    const o = await startTestOrigin({ secrets })
    const res = await send(o, id())
    expect(res.status).toBe(401)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}signature-invalid`, status: 401, retryable: false })
    expect(p.detail).toMatch(detail)
    expect(o.runs()).toBe(0)
  })

  it('refuses a signed request whose request id was changed (every Once-* header is covered)', async () => {
    const o = await startTestOrigin({ secrets })
    const headers = await signedHeaders(key, `${o.url}/effects`, { headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: 'r-a' }, body: '{}' })
    const res = await fetch(`${o.url}/effects`, { method: 'POST', headers: { ...headers, [ONCE_HEADERS.requestId]: 'r-b' }, body: '{}' })
    expect(res.status).toBe(401)
    expect(o.runs()).toBe(0)
  })

  it('a captured signed request replayed with Once-Noop: ?1 added is refused; the genuine one then applies (issue 15.7)', async () => {
    const o = await startTestOrigin({ secrets })
    const d = `acct-${crypto.randomUUID()}`
    const r = id()
    const captured = await signedHeaders(key, `${o.url}/effects`, {
      headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: d, [ONCE_HEADERS.sequence]: '1' },
      body: '{"amount":5}',
    })
    const forged = await fetch(`${o.url}/effects`, { method: 'POST', headers: { ...captured, [ONCE_HEADERS.noop]: '?1' }, body: '{"amount":5}' })
    expect(forged.status).toBe(401)
    expect((await problemOf(forged)).detail).toMatch(/"once-noop"/)
    const genuine = await fetch(`${o.url}/effects`, { method: 'POST', headers: captured, body: '{"amount":5}' })
    expect(genuine.status).toBe(201)
    expect(o.effects(r)).toBe(1)
  })

  it('400 when the body does not match its Content-Digest, or the digest is missing; nothing runs', async () => {
    const o = await startTestOrigin({ secrets })
    const altered = await o.signed(key, { [ONCE_HEADERS.requestId]: id() }, '{"amount":500}', { bodyForDigest: '{"amount":5}' })
    expect(altered.status).toBe(400)
    expect(altered.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect((await problemOf(altered)).detail).toMatch(/does not match its Content-Digest/)
    // A signature that does not cover content-digest is refused before the body is looked at.
    const r = id()
    const headers = await signedHeaders(key, `${o.url}/effects`, { headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r }, body: '{}' })
    const { 'content-digest': _digest, ...without } = headers
    const noDigest = await fetch(`${o.url}/effects`, { method: 'POST', headers: without, body: '{}' })
    expect([400, 401]).toContain(noDigest.status)
    expect(o.runs()).toBe(0)
  })

  it('with secrets, refuses a required method without Once-Request-Id with 401 even when signed', async () => {
    const o = await startTestOrigin({ secrets })
    const res = await o.signed(key, {}, '{}')
    expect(res.status).toBe(401)
    expect((await problemOf(res)).type).toBe(`${PROBLEM_BASE}request-id-missing`)
    expect(o.runs()).toBe(0)
  })

  it('checks safe methods too, then lets them through', async () => {
    const o = await startTestOrigin({ secrets })
    expect((await fetch(`${o.url}/effects`)).status).toBe(401)
    const headers = await signedHeaders(key, `${o.url}/effects`, { method: 'GET' })
    const res = await fetch(`${o.url}/effects`, { headers })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ total: 0 })
  })

  it('holds several secrets by keyid at once (rotation)', async () => {
    const o = await startTestOrigin({ secrets: { ...secrets, k2026: 'new-secret-0123456789' } })
    expect((await o.signed(key, { [ONCE_HEADERS.requestId]: id() })).status).toBe(201)
    expect((await o.signed({ keyid: 'k2026', secret: 'new-secret-0123456789' }, { [ONCE_HEADERS.requestId]: id() })).status).toBe(201)
    expect((await o.signed({ keyid: 'k2026', secret: key.secret }, { [ONCE_HEADERS.requestId]: id() })).status).toBe(401)
  })

  it('hands the handler the signed Once-Principal as c.var.receiver.principal', async () => {
    const o = await startTestOrigin({ secrets })
    const res = await o.signed(key, { [ONCE_HEADERS.requestId]: id(), [ONCE_HEADERS.principal]: 'iss="https://auth.example.com", sub="user-17"' })
    expect(res.status).toBe(201)
    expect((await res.json()).principal).toEqual({ iss: 'https://auth.example.com', sub: 'user-17' })
  })
})

describe('onceReceiver: decides on the signature before reading the body; bounds the body (issue 15.10)', () => {
  /** A body stream that counts the bytes pulled from it, and never ends on its own (64 MiB if drained). */
  const counted = () => {
    let pulled = 0
    const chunk = new Uint8Array(64 * 1024)
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled >= 64 * 1024 * 1024) return controller.close()
          pulled += chunk.byteLength
          controller.enqueue(chunk)
        },
      },
      { highWaterMark: 0 },
    )
    return { stream, pulled: () => pulled }
  }

  it('refuses an unsigned 64 MiB request with 401 without buffering it', async () => {
    const store = sqliteStore(new DatabaseSync(':memory:'))
    const app = new Hono()
    app.use('*', onceReceiver({ store, secrets }))
    app.post('*', (c) => c.text('ran'))
    const body = counted()
    const res = await app.request('/effects', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: body.stream, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(401)
    expect(body.pulled()).toBeLessThanOrEqual(64 * 1024)
  })

  it('413 body-too-large past maxBodyBytes (1 MiB by default), declared or streamed, without reading it all', async () => {
    const o = await startTestOrigin({ secrets })
    const big = 'x'.repeat(1024 * 1024 + 1)
    const res = await o.signed(key, { [ONCE_HEADERS.requestId]: id() }, big)
    expect(res.status).toBe(413)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}body-too-large`, retryable: false })
    expect((await o.signed(key, { [ONCE_HEADERS.requestId]: id() }, 'x'.repeat(1024 * 1024))).status).toBe(201)

    const store = sqliteStore(new DatabaseSync(':memory:'))
    const app = new Hono()
    app.use('*', onceReceiver({ store, maxBodyBytes: 100_000 }))
    app.post('*', (c) => c.text('ran'))
    const body = counted()
    const streamed = await app.request('/effects', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-2' }, body: body.stream, duplex: 'half' } as RequestInit)
    expect(streamed.status).toBe(413)
    expect(body.pulled()).toBeLessThan(300_000)
    expect(o.runs()).toBe(1)
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
    expect(await problemOf(early)).toMatchObject({ type: `${PROBLEM_BASE}sequence-gap`, expected_sequence: 1 })
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
    expect((await problemOf(other)).type).toBe(`${PROBLEM_BASE}sequence-conflict`)
    // An applied request id arriving with another slot is a conflict too.
    const moved = await o.post(ordered(d, 3, r1))
    expect((await problemOf(moved)).type).toBe(`${PROBLEM_BASE}sequence-conflict`)
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
    expect(p.type).toBe(`${PROBLEM_BASE}bad-request`)
    expect(p.detail).toMatch(detail)
    expect(o.runs()).toBe(0)
  })
})

describe('onceReceiver: Once-Applied on every answer (DESIGN §6)', () => {
  const ordered = (domain: string, sequence: number, r: string, extra: Record<string, string> = {}) => ({
    [ONCE_HEADERS.requestId]: r,
    [ONCE_HEADERS.domain]: domain,
    [ONCE_HEADERS.sequence]: String(sequence),
    ...extra,
  })

  it('?1 on a recorded answer and its replays, a final 4xx of the app included', async () => {
    const o = await startTestOrigin()
    const r = id()
    const fresh = await o.post({ [ONCE_HEADERS.requestId]: r })
    expect(fresh.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect((await o.post({ [ONCE_HEADERS.requestId]: r })).headers.get(ONCE_HEADERS.applied)).toBe('?1')
    const rejected = id()
    expect((await o.post({ [ONCE_HEADERS.requestId]: rejected, 'x-mode': 'reject' })).headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect((await o.post({ [ONCE_HEADERS.requestId]: rejected })).headers.get(ONCE_HEADERS.applied)).toBe('?1')
  })

  it('?1 on the no-op 204 and its replay', async () => {
    const o = await startTestOrigin()
    const d = `acct-${crypto.randomUUID()}`
    const r = id()
    const noop = await o.post(ordered(d, 1, r, { [ONCE_HEADERS.noop]: '?1' }))
    expect(noop.status).toBe(204)
    expect(noop.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect((await o.post(ordered(d, 1, r, { [ONCE_HEADERS.noop]: '?1' }))).headers.get(ONCE_HEADERS.applied)).toBe('?1')
  })

  it('?0 with handler-failed (500) when the app threw; its writes are rolled back', async () => {
    const o = await startTestOrigin()
    const r = id()
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const res = await o.post({ [ONCE_HEADERS.requestId]: r, 'x-mode': 'throw' })
    expect(res.status).toBe(500)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    // The detail says what happened in general terms; the message (it may hold secrets) is in the origin's log.
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, detail: expect.stringContaining('The handler threw (Error)') })
    expect(JSON.stringify(p)).not.toContain('ledger exploded')
    expect(logged.mock.calls.some((args) => args.includes(r) && args.some((a) => a instanceof Error && a.message === 'ledger exploded'))).toBe(true)
    logged.mockRestore()
    expect(o.effects(r)).toBe(0)
  })

  it.each<[Mode, number]>([
    ['fail', 503],
    ['too-many', 429],
  ])('?0 on an app %s (%d), passed on as the app gave it and rolled back', async (mode, status) => {
    const o = await startTestOrigin()
    const res = await o.post({ [ONCE_HEADERS.requestId]: id(), 'x-mode': mode })
    expect(res.status).toBe(status)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(res.headers.get('content-type')).toBe('application/json')
  })

  it('?0 on refusals: a gap, a conflict, a bad header, in flight', async () => {
    const o = await startTestOrigin({ waitMs: 50 })
    const d = `acct-${crypto.randomUUID()}`
    const gap = await o.post(ordered(d, 3, id()))
    expect(gap.status).toBe(409)
    expect(gap.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect((await o.post({ [ONCE_HEADERS.requestId]: 'r 1' })).headers.get(ONCE_HEADERS.applied)).toBe('?0')
    const r1 = id()
    expect((await o.post(ordered(d, 1, r1))).status).toBe(201)
    expect((await o.post(ordered(d, 1, id()))).headers.get(ONCE_HEADERS.applied)).toBe('?0')
    const held = id()
    const release = o.hold(held)
    const first = o.post({ [ONCE_HEADERS.requestId]: held })
    await until(() => o.runs() === 2)
    const busy = await o.post({ [ONCE_HEADERS.requestId]: held })
    expect(busy.status).toBe(409)
    expect(busy.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    release()
    expect((await first).status).toBe(201)
  })

  it('no Once-Applied on a request it passes through (no request id: nothing was recorded either way)', async () => {
    const o = await startTestOrigin()
    expect((await o.post({})).headers.get(ONCE_HEADERS.applied)).toBeNull()
  })
})

describe('onceReceiver: methods only says which methods require an id (issue 15.4)', () => {
  it("with methods: ['POST'], a signed PATCH with Once-Request-Id is deduped, and one ahead of its sequence is a gap", async () => {
    const o = await startTestOrigin({ secrets, methods: ['POST'] })
    const r = id()
    const patch = () => o.signed(key, { [ONCE_HEADERS.requestId]: r }, '{"amount":5}', { method: 'PATCH' })
    expect((await patch()).status).toBe(201)
    const again = await patch()
    expect(again.status).toBe(201)
    expect(again.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect(o.effects(r)).toBe(1)
    expect(o.runs()).toBe(1)
    const d = `acct-${crypto.randomUUID()}`
    const ahead = await o.signed(key, { [ONCE_HEADERS.requestId]: id(), [ONCE_HEADERS.domain]: d, [ONCE_HEADERS.sequence]: '7' }, '{}', { method: 'PATCH' })
    expect(ahead.status).toBe(409)
    expect(ahead.headers.get(ONCE_HEADERS.expectedSequence)).toBe('1')
    expect(o.runs()).toBe(1)
    // A PATCH without an id is not required to carry one here: it passes through.
    expect((await o.signed(key, {}, '{}', { method: 'PATCH' })).status).toBe(201)
  })

  it('never records a GET, even with a request id (a hedged read may carry one for tracing)', async () => {
    const o = await startTestOrigin()
    const res = await fetch(`${o.url}/effects`, { headers: { [ONCE_HEADERS.requestId]: id() } })
    expect(res.status).toBe(200)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBeNull()
  })
})

describe('sqliteStore: bounded waits, and a transaction SQLite rolled back by itself (issue 15.13)', () => {
  const app = (store: ReturnType<typeof sqliteStore<DatabaseSync>>, handler: (c: import('hono').Context<{ Variables: ReceiverVariables<DatabaseSync> }>) => Response | Promise<Response>) => {
    const a = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    a.use('*', onceReceiver({ store }))
    a.post('*', handler)
    return a
  }
  const post = (a: Hono<{ Variables: ReceiverVariables<DatabaseSync> }>, r: string) => a.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: r }, body: '{}' })

  it('fails the request (503, ?0) when SQLite rolled back mid-handler, keeps none of its writes, and the retry applies it once', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE t (v TEXT)')
    // What SQLite does by itself on a full disk or an I/O error: the transaction ends under the handler.
    db.exec('CREATE TABLE full (v TEXT)')
    db.exec("CREATE TRIGGER full_disk BEFORE INSERT ON full BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END")
    const store = sqliteStore(db)
    let selfRollback = true
    const a = app(store, (c) => {
      try {
        if (selfRollback) c.var.receiver.tx.prepare('INSERT INTO full VALUES (?)').run('x')
      } catch {
        // a handler that carries on after a failed statement
      }
      c.var.receiver.tx.prepare('INSERT INTO t VALUES (?)').run('write')
      return c.json({ ok: true }, 201)
    })
    const res = await post(a, 'r-1')
    expect(res.status).toBe(503)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(await store.applied()).toEqual([])
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_requests').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 })
    selfRollback = false
    const retry = await post(a, 'r-1')
    expect(retry.status).toBe(201)
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_requests').get()).toEqual({ n: 1 })
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 1 })
  })

  it.each(['ROLLBACK', 'COMMIT', 'BEGIN', ' savepoint x', 'RELEASE x', 'END'])('refuses a handler\'s own %s through tx: nothing of it is kept', async (statement) => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE t (v TEXT)')
    const store = sqliteStore(db)
    const a = app(store, (c) => {
      c.var.receiver.tx.prepare('INSERT INTO t VALUES (?)').run('write')
      c.var.receiver.tx.exec(statement)
      return c.json({ ok: true }, 201)
    })
    const res = await post(a, 'r-1')
    expect(res.status).toBe(500)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_requests').get()).toEqual({ n: 0 })
  })

  it('exclusive() called from inside a handler gives up after waitMs instead of deadlocking the store for good', async () => {
    const db = new DatabaseSync(':memory:')
    const store = sqliteStore(db, { waitMs: 100 })
    const a = app(store, async (c) => {
      await store.exclusive((conn) => conn.prepare('SELECT 1').get())
      return c.json({ ok: true }, 201)
    })
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const res = await post(a, 'r-1')
    expect(res.status).toBe(500)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed` })
    // What it threw is in the origin's log, not in the answer.
    expect(logged.mock.calls.some((args) => args.some((a) => a instanceof Error && a.message.includes('exclusive()')))).toBe(true)
    logged.mockRestore()
    // The store is free again.
    expect(await store.exclusive((conn) => conn.prepare('SELECT 1 AS one').get())).toEqual({ one: 1 })
    expect(await store.nextSequences()).toEqual({})
  })

  it('refuses a bad waitMs at construction', () => {
    expect(() => sqliteStore(new DatabaseSync(':memory:'), { waitMs: -1 })).toThrow(/waitMs/)
  })
})
