/**
 * Review s31 (docs) F9: docs/origin.md says of sqliteStore(): "Use store.exclusive(fn) for the app's other access to
 * the connection" (one connection holds one transaction, and a request's BEGIN IMMEDIATE … COMMIT spans its handler),
 * and examples/origin/bank.ts reads balances through store.exclusive(). The README's quick-start origin (copied by
 * users, and by test/e2e/pack.test.ts, which runs it) read `db` directly in its GET handler; it now keeps the store
 * and reads through store.exclusive(), and its deposit writes through the receiver's `tx`.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const readme = readFileSync('README.md', 'utf8')
const origin = readme.slice(readme.indexOf('// origin.ts'), readme.indexOf('```', readme.indexOf('// origin.ts')))

describe("README's origin example follows origin.md's rule for sqliteStore()", () => {
  it('prepares no statement on `db` itself: reads go through store.exclusive(), writes through the receiver tx', () => {
    expect(origin.split('\n').filter((l) => /\bdb\.prepare\(/.test(l))).toEqual([])
    expect(origin).toMatch(/const store = sqliteStore\(db\)/)
    expect(origin).toMatch(/onceReceiver\(\{ store,/)
    expect(origin).toMatch(/store\.exclusive\(\(conn\) => \{\s*const row = conn\.prepare\('SELECT balance/)
    expect(origin).toMatch(/c\.var\.receiver\.tx\s*\.prepare\('INSERT INTO accounts/)
  })
})
