import type { DatabaseSync } from 'node:sqlite'
import { Hono, type Context } from 'hono'
import { onceReceiver, type ReceiverVariables, type SqliteStore } from '../../src/origin/index.js'

/** The bank's own tables. `ledger` has one row per applied deposit, withdrawal or closing: the effects, counted by request id. */
const BANK_SCHEMA = [
  'CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)',
  'CREATE TABLE IF NOT EXISTS ledger (n INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, account TEXT NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL, balance INTEGER NOT NULL)',
]

/** Largest amount, in cents, of one deposit or withdrawal. */
const MAX_AMOUNT = 1_000_000_000

/** How the bank app is built. */
export interface BankAppOptions {
  /** The receiver store on the bank's database: its transactions carry the bank's writes. */
  store: SqliteStore<DatabaseSync>
  /** The secrets shared with the edge, by keyid (`onceReceiver({ secrets })`): requests must then be signed. */
  secrets?: Record<string, string> | undefined
  /** The receiver's wait for running repeats, ms. */
  waitMs?: number
  /** The receiver's wait for an earlier sequence that has not arrived yet, ms (default 250). */
  gapWaitMs?: number
  /** Read on each deposit: a buggy replica adds 1 extra cent (for divergence tests). */
  wrongBalance?: () => boolean
  /** Told about each handler run (committed or not), for stats. */
  onRun?: (requestId: string | undefined) => void
}

type Env = { Variables: ReceiverVariables<DatabaseSync> }

/**
 * Creates the bank's tables in `db` if they are missing.
 *
 * @param db - the origin's database
 * @example
 * createBankSchema(new DatabaseSync(':memory:'))
 */
export function createBankSchema(db: DatabaseSync): void {
  for (const statement of BANK_SCHEMA) db.exec(statement)
}

/**
 * A small bank behind `onceReceiver()` with the SQLite store: every deposit
 * and withdrawal writes through `c.var.receiver.tx`, so it commits with its
 * dedupe record and its sequence advance. Answers are deterministic given the
 * order of requests (no clocks, no origin names), so replicas can be compared
 * by their body digests.
 *
 * - `POST /accounts/:id/deposits {"amount":n}` → 201 `{ id, balance }`
 * - `POST /accounts/:id/withdrawals {"amount":n}` → 201 `{ id, balance }`, or 422 problem when funds are short
 * - `GET /accounts/:id` → 200 `{ id, balance }` (0 for an account never seen)
 * - `DELETE /accounts/:id` → 204 (no body): closes an account whose balance is 0, one never seen included (a ledger
 *   row of kind `close` records it), or 422 problem while it holds money
 *
 * @param options - database, store and knobs
 * @returns the Hono app
 * @example
 * const db = new DatabaseSync(':memory:')
 * createBankSchema(db)
 * const app = bankApp({ store: sqliteStore(db) })
 */
export function bankApp(options: BankAppOptions): Hono<Env> {
  const { store, secrets, waitMs, gapWaitMs, wrongBalance = () => false, onRun } = options
  const app = new Hono<Env>()
  app.use('/accounts/*', onceReceiver({
      store,
      ...(secrets === undefined ? {} : { secrets }),
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(gapWaitMs === undefined ? {} : { gapWaitMs }),
    }))

  /** Runs `apply`: with a request id in the receiver's transaction (with its dedupe record); without one (no secrets set) in a plain one. */
  const applied = (receiver: Env['Variables']['receiver'] | undefined, apply: (conn: DatabaseSync) => Response): Response | Promise<Response> => {
    if (receiver) return apply(receiver.tx)
    return store.exclusive((conn) => {
      conn.exec('BEGIN IMMEDIATE')
      try {
        const res = apply(conn)
        conn.exec('COMMIT')
        return res
      } catch (err) {
        conn.exec('ROLLBACK')
        throw err
      }
    })
  }

  app.get('/accounts/:id', async (c) => {
    const id = c.req.param('id')
    return c.json({ id, balance: await store.exclusive((conn) => balanceOf(conn, id)) })
  })

  const movement = (kind: 'deposit' | 'withdrawal') => async (c: Context<Env>) => {
    const id = c.req.param('id') ?? ''
    const amount = await readAmount(c)
    if (typeof amount === 'string') return problem(c, 400, 'invalid-amount', 'Invalid amount', amount)
    const receiver = c.get('receiver') as Env['Variables']['receiver'] | undefined
    onRun?.(receiver?.requestId)
    return applied(receiver, (conn) => {
      const before = balanceOf(conn, id)
      if (kind === 'withdrawal' && before < amount) {
        return problem(c, 422, 'insufficient-funds', 'Insufficient funds', `Account ${id} holds ${before}; cannot withdraw ${amount}.`)
      }
      const balance = kind === 'deposit' ? before + amount + (wrongBalance() ? 1 : 0) : before - amount
      conn.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance').run(id, balance)
      conn
        .prepare('INSERT INTO ledger (request_id, account, kind, amount, balance) VALUES (?, ?, ?, ?, ?)')
        .run(receiver?.requestId ?? null, id, kind, amount, balance)
      return c.json({ id, balance }, 201)
    })
  }
  app.post('/accounts/:id/deposits', movement('deposit'))
  app.post('/accounts/:id/withdrawals', movement('withdrawal'))
  app.delete('/accounts/:id', (c) => {
    const id = c.req.param('id')
    const receiver = c.get('receiver') as Env['Variables']['receiver'] | undefined
    onRun?.(receiver?.requestId)
    return applied(receiver, (conn) => {
      const balance = balanceOf(conn, id)
      if (balance !== 0) return problem(c, 422, 'account-not-empty', 'Account not empty', `Account ${id} holds ${balance}; withdraw it before closing.`)
      conn.prepare('DELETE FROM accounts WHERE id = ?').run(id)
      conn.prepare("INSERT INTO ledger (request_id, account, kind, amount, balance) VALUES (?, ?, 'close', 0, 0)").run(receiver?.requestId ?? null, id)
      return c.body(null, 204)
    })
  })

  return app
}

/**
 * The balance of every account, by id.
 *
 * @param db - the origin's database
 * @returns id → balance in cents
 * @example
 * balances(db) // { alice: 500 }
 */
export function balances(db: DatabaseSync): Record<string, number> {
  const out: Record<string, number> = {}
  for (const row of db.prepare('SELECT id, balance FROM accounts ORDER BY id').all()) out[String(row.id)] = Number(row.balance)
  return out
}

/**
 * How many ledger rows (effects) each request id produced.
 *
 * @param db - the origin's database
 * @returns request id → effects
 * @example
 * effectsByRequestId(db)['r-1'] // 1
 */
export function effectsByRequestId(db: DatabaseSync): Record<string, number> {
  const out: Record<string, number> = {}
  for (const row of db.prepare('SELECT request_id, COUNT(*) AS n FROM ledger WHERE request_id IS NOT NULL GROUP BY request_id').all()) {
    out[String(row.request_id)] = Number(row.n)
  }
  return out
}

function balanceOf(db: DatabaseSync, id: string): number {
  const row = db.prepare('SELECT balance FROM accounts WHERE id = ?').get(id)
  return row ? Number(row.balance) : 0
}

/** The amount in cents, or why it is not one. */
async function readAmount(c: Context): Promise<number | string> {
  let body: unknown
  try {
    body = await c.req.json()
  } catch {
    return 'The body must be JSON: {"amount": <cents>}.'
  }
  const amount = (body as { amount?: unknown } | null)?.amount
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount <= 0 || amount > MAX_AMOUNT) {
    return `amount must be an integer from 1 to ${MAX_AMOUNT} (cents).`
  }
  return amount
}

function problem(c: Context, status: 400 | 422, slug: string, title: string, detail: string): Response {
  return c.json({ type: `https://hono-once.dev/examples/bank/${slug}`, title, status, detail }, status, { 'content-type': 'application/problem+json' })
}
