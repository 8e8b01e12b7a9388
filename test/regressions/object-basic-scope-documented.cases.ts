/**
 * Review s32 (object) M2: docs/durable-state.md said "no credentials reach storage", while the default scope of a
 * Basic-auth request (the unsalted SHA-256 of its Authorization header) is stored in once_records.lookup. The page
 * now says so and gives the remedy once.md gives: a scope of your own. This checks both halves of what it says.
 */
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/shared/digest.js'
import type { OnceAccount } from '../once-object/fixture.js'
import { edge, newAccount, newKey, stubOf } from '../once-object/installed.js'

const lookups = (a: string) =>
  runInDurableObject(stubOf(a), (_o: OnceAccount, state) => state.storage.sql.exec<{ lookup: string }>('SELECT lookup FROM once_records').toArray().map((r) => r.lookup))

describe('what an OnceObject record keeps of a Basic-auth request', () => {
  it.each([
    ['the default scope: the hash, as the page warns', undefined, 1],
    ["a scope of the verified user's, as the page advises: no hash", () => 'user-alice', 0],
  ] as const)('%s', async (_name, scope, hashed) => {
    const a = newAccount()
    const authorization = `Basic ${btoa('alice:hunter2')}`
    const { send } = edge({ replayCache: false, ...(scope ? { scope } : {}) })
    expect((await send(a, 'deposits', newKey(), { headers: { authorization }, body: '{"amount":1}' })).status).toBe(201)
    const guess = await sha256Hex(authorization)
    expect((await lookups(a)).filter((l) => l.includes(guess)).length).toBe(hashed)
  })
})
