/**
 * Expired OnceObject records are reclaimed at the rate rows are written (reviews s29d R5, s29e E4): a sweep, at most
 * once a second, deletes up to twice the rows written since the last (stored replies and released ones alike; at
 * least 16), so storage stays bounded at any rate of new keys.
 */
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { edge, install, newAccount, newKey, stubOf } from './installed.js'

/** Sends ~60 new keys/s for 2.5 s to an object holding a backlog of 500 expired records; how many it wrote and reclaimed. */
async function underLoad(a: string): Promise<{ written: number; deleted: number }> {
  const { send } = edge({ replayCache: false, ttlSeconds: 1 })
  await (await send(a, 'deposits', newKey())).arrayBuffer() // the tables exist
  await runInDurableObject(stubOf(a), (_obj, state) => {
    for (let i = 0; i < 500; i++) {
      state.storage.sql.exec(
        "INSERT INTO once_records (lookup, fingerprint, request_id, state, token, attempt, expires_at, status, headers, body) VALUES (?, 'f', 'r', 'committed', NULL, 1, ?, 201, '[]', x'00')",
        `old-${i}`,
        Date.now() - 1000,
      )
    }
  })
  const start = Date.now()
  let written = 0
  while (Date.now() - start < 2500) {
    await Promise.all(Array.from({ length: 3 }, async () => (await send(a, 'deposits', newKey())).arrayBuffer()))
    written += 3
    await scheduler.wait(50)
  }
  const left = await runInDurableObject(stubOf(a), (_obj, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM once_records WHERE lookup LIKE 'old-%'").one().n)
  return { written, deleted: 500 - left }
}

describe('expired OnceObject records', () => {
  it('at ~60 new keys/s over a backlog, at least as many expired rows are deleted as records are written', async () => {
    const { written, deleted } = await underLoad(newAccount())
    expect(deleted, `written ${written}`).toBeGreaterThanOrEqual(written)
  })

  it('released rows count too: an object that refuses every request (429) still reclaims as fast as it writes', async () => {
    const a = newAccount()
    await install(a, () => new Hono().post('/acct/:name/deposits', (c) => c.json({ error: 'slow down' }, 429)))
    const { written, deleted } = await underLoad(a)
    expect(deleted, `written ${written}`).toBeGreaterThanOrEqual(written)
  })
})
