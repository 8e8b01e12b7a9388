import { DatabaseSync } from 'node:sqlite'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { memoryStore, sqliteStore, type MemoryTx } from '../../src/origin/index.js'
import { storeContract } from './store-contract.js'

const memoryEffects = new Map<string, number>()
storeContract<MemoryTx>('memoryStore()', {
  make: () => memoryStore(),
  write: (tx, id) => tx.onCommit(() => memoryEffects.set(id, (memoryEffects.get(id) ?? 0) + 1)),
  effects: (id) => memoryEffects.get(id) ?? 0,
})

const sqliteDb = new DatabaseSync(':memory:')
sqliteDb.exec('CREATE TABLE effects (request_id TEXT NOT NULL)')
storeContract<DatabaseSync>('sqliteStore(node:sqlite)', {
  make: () => sqliteStore(sqliteDb),
  write: (tx, id) => void tx.prepare('INSERT INTO effects (request_id) VALUES (?)').run(id),
  effects: (id) => Number(sqliteDb.prepare('SELECT COUNT(*) AS n FROM effects WHERE request_id = ?').get(id)?.n),
})

describe('sqliteStore: transactions on one shared connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'once-sqlite-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('creates its tables once and leaves the app’s alone', () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE mine (x INTEGER)')
    sqliteStore(db)
    sqliteStore(db)
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name)
    expect(tables).toEqual(['mine', 'once_domains', 'once_requests'])
  })

  it('serializes transactions, also across two stores made on one connection, and exclusive() waits for them', async () => {
    const db = new DatabaseSync(':memory:')
    const [a, b] = [sqliteStore(db), sqliteStore(db)]
    const log: string[] = []
    const slow = (name: string) => async () => {
      log.push(`${name} start`)
      await new Promise((r) => setTimeout(r, 30))
      log.push(`${name} end`)
      return { status: 200, headers: [], body: new Uint8Array() }
    }
    await Promise.all([
      a.apply({ requestId: 'x', noop: false }, slow('x')),
      b.apply({ requestId: 'y', noop: false }, slow('y')),
      a.exclusive(() => void log.push('exclusive')),
    ])
    expect(log).toEqual(['x start', 'x end', 'y start', 'y end', 'exclusive'])
  })

  it('leaves neither the handler’s write nor a record when the handler writes then throws', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
    const store = sqliteStore(db)
    await expect(
      store.apply({ requestId: 'r1', domain: 'alice', sequence: 1, noop: false }, async (tx) => {
        tx.prepare('INSERT INTO accounts VALUES (?, ?)').run('alice', 100)
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(db.prepare('SELECT COUNT(*) AS n FROM accounts').get()?.n).toBe(0)
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_requests').get()?.n).toBe(0)
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_domains').get()?.n).toBe(0)
    expect(db.isTransaction).toBe(false)
  })

  it('refuses at the database level an ordered record whose sequence is not the next (the CHECK)', () => {
    const db = new DatabaseSync(':memory:')
    sqliteStore(db)
    db.exec("INSERT INTO once_domains VALUES ('d', 3)")
    const insert = db.prepare(
      'INSERT INTO once_requests (request_id, domain, sequence, noop, status, headers, body, applied_at) VALUES (?, ?, (SELECT next_sequence FROM once_domains WHERE domain = ? AND next_sequence = ?), 0, 200, ?, NULL, 0)',
    )
    expect(() => insert.run('r', 'd', 'd', 2, '[]')).toThrow(/CHECK constraint failed/)
    expect(() => insert.run('r', 'd', 'd', 3, '[]')).not.toThrow()
    expect(() => insert.run('r2', 'd', 'd', 3, '[]')).toThrow(/UNIQUE constraint failed/)
  })

  it('stays exactly-once with two connections (two processes) on one file: the busy one fails, its retry replays', async () => {
    const file = join(dir, 'shared.db')
    const one = new DatabaseSync(file)
    const two = new DatabaseSync(file)
    one.exec('PRAGMA journal_mode = WAL')
    one.exec('CREATE TABLE effects (request_id TEXT)')
    const [s1, s2] = [sqliteStore(one), sqliteStore(two)]
    const claim = { requestId: 'r-shared', domain: 'acct', sequence: 1, noop: false }
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const first = s1.apply(claim, async (tx) => {
      tx.prepare('INSERT INTO effects VALUES (?)').run(claim.requestId)
      await gate
      return { status: 201, headers: [], body: new TextEncoder().encode('done') }
    })
    await new Promise((r) => setTimeout(r, 20))
    // Connection two cannot begin while one holds the write lock (busy_timeout 0 here: it fails at once).
    await expect(s2.apply(claim, async () => ({ status: 201, headers: [], body: new Uint8Array() }))).rejects.toThrow(/locked|busy/i)
    release()
    expect(await first).toEqual({ kind: 'applied' })
    const retry = await s2.apply(claim, async () => {
      throw new Error('must not run again')
    })
    expect(retry.kind === 'replay' && new TextDecoder().decode(retry.reply.body)).toBe('done')
    expect(two.prepare('SELECT COUNT(*) AS n FROM effects').get()?.n).toBe(1)
    one.close()
    two.close()
  })
})
