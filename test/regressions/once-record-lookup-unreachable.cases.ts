/**
 * Review s32 (object) L2: docs/durable-state.md offered `stub.onceRecord(lookup)` "for operators and tests", and
 * its JSDoc example called `onceRecord(lookupKey('', 'dep-1'))`; but no entry point exported how to make a lookup
 * (a private `${scope.length}:${scope}:${key}` format). hono-once/testing now has objectRecord(stub, key, { scope }),
 * as keyRecord() is for the StableArea.
 */
import { describe, expect, it } from 'vitest'
import * as testing from '../../src/testing.js'
import { objectRecord } from '../../src/testing.js'
import { edge, newAccount, newKey, stubOf } from '../once-object/installed.js'

describe('the record onceRecord() tells', () => {
  it('can be read from a key with what the package exports', () => {
    expect(Object.keys(testing)).toContain('objectRecord')
  })

  it.each([
    ['the default scope', undefined, ''],
    ["a scope function's scope", 'tenant-7', 'tenant-7'],
  ] as const)('objectRecord() finds a committed record in %s, and none for another scope or key', async (_name, scope, address) => {
    const a = newAccount()
    const k = newKey()
    const { send } = edge({ replayCache: false, ...(scope === undefined ? {} : { scope: () => scope }) })
    expect((await send(a, 'deposits', k)).status).toBe(201)
    expect(await objectRecord(stubOf(a), k, { scope: address })).toMatchObject({ state: 'committed', status: 201, attempt: 1 })
    expect(await objectRecord(stubOf(a), k, { scope: `${address}x` })).toBeNull()
    expect(await objectRecord(stubOf(a), newKey(), { scope: address })).toBeNull()
  })
})
