/**
 * Expired records are reclaimed at the rate they are written (review s29d R5): a sweep, once a second, deletes up
 * to twice what was written since the last (at least 16), so storage stays bounded at any rate of new keys.
 */
import { describe, expect, it } from 'vitest'
import { edge, newAccount, newKey, stubOf } from './installed.js'
import { runInDurableObject } from 'cloudflare:test'

describe('expired OnceObject records (review s29d R5)', () => {
  it('at ~60 new keys/s for 2.5 s over a backlog, at least as many expired rows are deleted as records are written', async () => {
    const a = newAccount()
    const { send } = edge({ replayCache: false, ttlSeconds: 1 })
    await send(a, 'deposits', newKey()) // the tables exist
    // A backlog of 500 expired records (yesterday's traffic).
    await runInDurableObject(stubOf(a), (_obj, state) => {
      for (let i = 0; i < 500; i++) {
        state.storage.sql.exec(
          "INSERT INTO once_records (lookup, fingerprint, request_id, state, token, attempt, expires_at, status, headers, body) VALUES (?, 'f', 'r', 'committed', NULL, 1, ?, 201, '[]', x'00')",
          `old-${i}`,
          Date.now() - 1000,
        )
      }
    })
    const count = (where: string) =>
      runInDurableObject(stubOf(a), (_obj, state) => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM once_records WHERE ${where}`).one().n)
    const start = Date.now()
    let written = 0
    while (Date.now() - start < 2500) {
      await Promise.all(Array.from({ length: 3 }, () => send(a, 'deposits', newKey())))
      written += 3
      await scheduler.wait(50)
    }
    const deleted = 500 - (await count("lookup LIKE 'old-%'"))
    // Bounded storage needs reclaiming at least what is written, on average.
    expect(deleted, `written ${written}`).toBeGreaterThanOrEqual(written)
  })
})
