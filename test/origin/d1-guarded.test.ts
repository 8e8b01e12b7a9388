/*
 * d1Store and a write whose answer depends on what the handler read. Review s30 (S6): two withdrawals of an
 * account's whole balance in two isolates, each reading it through tx.db and pushing `UPDATE … WHERE balance >= ?`
 * (as the docs advised), were both answered 201 "withdrawn" (?1, replayed for good): 200 reported withdrawn while
 * 100 left the account. A plain push is not checked; tx.pushGuarded is.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { beforeAll, describe, expect, it } from 'vitest'
import { d1Store, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, type D1Tx, type ReceiverVariables } from '../../src/origin/index.js'

const db = env.RECEIVER_DB

beforeAll(async () => {
  await db.prepare('CREATE TABLE IF NOT EXISTS guarded_accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)').run()
})

/** One isolate's origin (its own store on the binding): a withdrawal that reads the balance, waits for `gate`, then writes. */
function isolate(gate: Promise<void>, guarded: boolean) {
  const app = new Hono<{ Variables: ReceiverVariables<D1Tx<D1Database>> }>()
  app.post('/accounts/:id/withdrawals', onceReceiver({ store: d1Store(db) }), async (c) => {
    const { tx } = c.var.receiver
    const id = c.req.param('id')
    const { amount } = await c.req.json<{ amount: number }>()
    const before = (await tx.db.prepare('SELECT balance FROM guarded_accounts WHERE id = ?').bind(id).first<{ balance: number }>())?.balance ?? 0
    if (before < amount) return c.json({ error: 'insufficient funds' }, 422)
    await gate
    const withdraw = tx.db.prepare('UPDATE guarded_accounts SET balance = balance - ? WHERE id = ? AND balance >= ?').bind(amount, id, amount)
    if (guarded) tx.pushGuarded(withdraw)
    else tx.push(withdraw)
    return c.json({ withdrawn: amount }, 201)
  })
  return (acct: string, requestId: string, amount: number) =>
    app.request(`/accounts/${acct}/withdrawals`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: requestId },
      body: JSON.stringify({ amount }),
    })
}

/** `status type-or-body applied` */
const describeAnswer = async (res: Response) => {
  const text = await res.text()
  const type = res.headers.get('content-type')?.includes('problem') ? (JSON.parse(text) as { type: string }).type.replace(PROBLEM_BASE, '') : text
  return `${res.status} ${type} ${res.headers.get(ONCE_HEADERS.applied)}`
}

/** Two isolates withdraw 100 each from an account holding 100, both reading before either writes. */
async function race(guarded: boolean) {
  const acct = `a-${crypto.randomUUID()}`
  await db.prepare('INSERT INTO guarded_accounts (id, balance) VALUES (?, 100)').bind(acct).run()
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const [one, two] = [isolate(gate, guarded), isolate(gate, guarded)]
  const ids = [crypto.randomUUID(), crypto.randomUUID()]
  const pending = [one(acct, ids[0]!, 100), two(acct, ids[1]!, 100)]
  await new Promise((r) => setTimeout(r, 50))
  open()
  const answers = await Promise.all(pending.map(async (p) => describeAnswer(await p)))
  const balance = async () => (await db.prepare('SELECT balance FROM guarded_accounts WHERE id = ?').bind(acct).first<{ balance: number }>())?.balance
  return { acct, ids, answers, balance, one, two }
}

describe('d1Store: a guarded write that changes no row', () => {
  it('tx.pushGuarded: the loser is not recorded (503 ?0, retryable); its retry reads anew and answers a final 422', async () => {
    const r = await race(true)
    expect(r.answers.sort()).toEqual(['201 {"withdrawn":100} ?1', '503 store-unavailable ?0'])
    expect(await r.balance()).toBe(0)
    // The edge sends the loser again (same request id): the handler reads 0 now.
    const loser = r.answers.findIndex((a) => a.startsWith('503'))
    const retry = await describeAnswer(await (loser === 0 ? r.one : r.two)(r.acct, r.ids[loser]!, 100))
    expect(retry).toBe('422 {"error":"insufficient funds"} ?1')
    expect(await r.balance()).toBe(0)
  })

  it('tx.pushGuarded on a write that changes its row commits as push does', async () => {
    const acct = `a-${crypto.randomUUID()}`
    await db.prepare('INSERT INTO guarded_accounts (id, balance) VALUES (?, 100)').bind(acct).run()
    const withdraw = isolate(Promise.resolve(), true)
    expect(await describeAnswer(await withdraw(acct, crypto.randomUUID(), 30))).toBe('201 {"withdrawn":30} ?1')
    expect(await describeAnswer(await withdraw(acct, crypto.randomUUID(), 70))).toBe('201 {"withdrawn":70} ?1')
    expect((await db.prepare('SELECT balance FROM guarded_accounts WHERE id = ?').bind(acct).first<{ balance: number }>())?.balance).toBe(0)
    expect((await db.prepare('SELECT COUNT(*) AS n FROM once_guards').first<{ n: number }>())?.n).toBe(0)
  })

  it('a plain push is not checked (as documented): both are recorded 201, though one write did nothing', async () => {
    const r = await race(false)
    expect(r.answers).toEqual(['201 {"withdrawn":100} ?1', '201 {"withdrawn":100} ?1'])
    expect(await r.balance()).toBe(0)
  })
})
