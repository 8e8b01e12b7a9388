import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { d1Store, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, type D1Tx, type ReceiverVariables } from '../../src/origin/index.js'
import { storeContract } from './store-contract.js'

const db = env.RECEIVER_DB

beforeAll(async () => {
  await db.batch([
    db.prepare('CREATE TABLE IF NOT EXISTS effects (request_id TEXT NOT NULL)'),
    db.prepare('CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))'),
  ])
})

const effects = async (id: string) => (await db.prepare('SELECT COUNT(*) AS n FROM effects WHERE request_id = ?').bind(id).first<{ n: number }>())?.n ?? 0

storeContract<D1Tx<D1Database>>('d1Store(env.RECEIVER_DB)', {
  make: () => d1Store(db),
  write: (tx, id) => tx.push(tx.db.prepare('INSERT INTO effects (request_id) VALUES (?)').bind(id)),
  effects,
})

/**
 * A D1-backed origin app. Each call makes its own store, as a separate
 * isolate would: no in-process locks are shared, only the database.
 */
function d1Origin(gate?: Promise<void>) {
  const app = new Hono<{ Variables: ReceiverVariables<D1Tx<D1Database>> }>()
  app.onError((err, c) => c.text(err.message, 500))
  let runs = 0
  app.post('/accounts/:id/deposits', onceReceiver({ store: d1Store(db) }), async (c) => {
    runs++
    const { tx, requestId } = c.var.receiver
    const id = c.req.param('id')
    const { amount } = await c.req.json<{ amount: number }>()
    const before = (await tx.db.prepare('SELECT balance FROM accounts WHERE id = ?').bind(id).first<{ balance: number }>())?.balance ?? 0
    await gate
    tx.push(
      tx.db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = balance + ?').bind(id, amount, amount),
      tx.db.prepare('INSERT INTO effects (request_id) VALUES (?)').bind(requestId),
    )
    if (c.req.header('x-mode') === 'fail') return c.json({ error: 'later' }, 503)
    return c.json({ id, balance: before + amount, run: runs }, 201)
  })
  const post = (path: string, headers: Record<string, string>, body: unknown) =>
    app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { app, post, runs: () => runs }
}

const uid = () => crypto.randomUUID()
const balance = async (id: string) => (await db.prepare('SELECT balance FROM accounts WHERE id = ?').bind(id).first<{ balance: number }>())?.balance

describe('d1Store behind onceReceiver', () => {
  it('dedupes: the repeat gets the same bytes and the batch ran once', async () => {
    const o = d1Origin()
    const [acct, r] = [`a-${uid()}`, uid()]
    const first = await o.post(`/accounts/${acct}/deposits`, { [ONCE_HEADERS.requestId]: r }, { amount: 5 })
    expect(first.status).toBe(201)
    const again = await o.post(`/accounts/${acct}/deposits`, { [ONCE_HEADERS.requestId]: r }, { amount: 5 })
    expect(await again.text()).toBe(await first.text())
    expect(await balance(acct)).toBe(5)
    expect(await effects(r)).toBe(1)
    expect(o.runs()).toBe(1)
  })

  it('orders a domain: gap → 409 Once-Expected-Sequence, then 1 and 2 in order, the old one replayed', async () => {
    const o = d1Origin()
    const acct = `a-${uid()}`
    const [r1, r2] = [uid(), uid()]
    const headers = (r: string, seq: number) => ({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: acct, [ONCE_HEADERS.sequence]: String(seq) })
    const gap = await o.post(`/accounts/${acct}/deposits`, headers(r2, 2), { amount: 2 })
    expect(gap.status).toBe(409)
    expect(gap.headers.get('once-expected-sequence')).toBe('1')
    expect((await o.post(`/accounts/${acct}/deposits`, headers(r1, 1), { amount: 1 })).status).toBe(201)
    expect((await o.post(`/accounts/${acct}/deposits`, headers(r2, 2), { amount: 2 })).status).toBe(201)
    expect(await (await o.post(`/accounts/${acct}/deposits`, headers(r1, 1), { amount: 1 })).json()).toMatchObject({ balance: 1 })
    expect(await balance(acct)).toBe(3)
    expect((await d1Store(db).applied(acct)).map((e) => [e.sequence, e.requestId])).toEqual([
      [1, r1],
      [2, r2],
    ])
  })

  it('runs the handler’s statements only with the record: a 503 leaves nothing, a failing statement rolls back the whole batch', async () => {
    const o = d1Origin()
    const acct = `a-${uid()}`
    const r = uid()
    expect((await o.post(`/accounts/${acct}/deposits`, { [ONCE_HEADERS.requestId]: r, 'x-mode': 'fail' }, { amount: 5 })).status).toBe(503)
    expect(await balance(acct)).toBeUndefined()
    expect(await effects(r)).toBe(0)
    // A negative deposit breaks the accounts CHECK inside the batch: no effect, no record, no sequence advance.
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {})
    const r2 = uid()
    const bad = await o.post(
      `/accounts/${acct}/deposits`,
      { [ONCE_HEADERS.requestId]: r2, [ONCE_HEADERS.domain]: acct, [ONCE_HEADERS.sequence]: '1' },
      { amount: -5 },
    )
    // It would fail the same way on every attempt: the handler's failure (permanent), not a passing store outage.
    expect(bad.status).toBe(500)
    quiet.mockRestore()
    expect((await bad.json()) as { type: string }).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, retryable: false })
    expect(bad.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(await effects(r2)).toBe(0)
    expect(await d1Store(db).nextSequence(acct)).toBe(1)
    expect((await d1Store(db).applied(acct)).length).toBe(0)
  })

  it('a concurrent duplicate in another isolate loses the batch race and answers with the winner’s stored result', async () => {
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    // Two isolates: separate stores, so nothing in memory makes one wait for the other.
    const [one, two] = [d1Origin(gate), d1Origin(gate)]
    const acct = `a-${uid()}`
    const r = uid()
    const headers = { [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: acct, [ONCE_HEADERS.sequence]: '1' }
    const a = one.post(`/accounts/${acct}/deposits`, headers, { amount: 7 })
    const b = two.post(`/accounts/${acct}/deposits`, headers, { amount: 7 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    open()
    const [ra, rb] = await Promise.all([a, b])
    expect([ra.status, rb.status]).toEqual([201, 201])
    // Both handlers ran (D1 holds no transaction across them), one batch committed, both answers are the winner's.
    expect(one.runs() + two.runs()).toBe(2)
    expect(await ra.text()).toBe(await rb.text())
    expect(await balance(acct)).toBe(7)
    expect(await effects(r)).toBe(1)
    expect(await d1Store(db).nextSequence(acct)).toBe(2)
  })

  it('a concurrent request for the same slot under another id loses with sequence-conflict, and nothing of it commits', async () => {
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const [one, two] = [d1Origin(gate), d1Origin(gate)]
    const acct = `a-${uid()}`
    const [x, y] = [uid(), uid()]
    const h = (r: string) => ({ [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: acct, [ONCE_HEADERS.sequence]: '1' })
    const a = one.post(`/accounts/${acct}/deposits`, h(x), { amount: 1 })
    const b = two.post(`/accounts/${acct}/deposits`, h(y), { amount: 100 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    open()
    const statuses = (await Promise.all([a, b])).map((res) => res.status).sort()
    expect(statuses).toEqual([201, 409])
    expect((await effects(x)) + (await effects(y))).toBe(1)
    expect([1, 100]).toContain(await balance(acct))
  })
})
