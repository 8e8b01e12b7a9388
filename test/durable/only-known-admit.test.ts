/**
 * StableArea.admit({ onlyKnown: true }): what once() asks when the route's signing secret is unusable. A key the
 * object has is answered as usual; a key it has not (never seen, or expired) is `unknown`, and nothing is written.
 */
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { newKey, stubFor } from '../helpers.js'

const admit = async (key: string, extra: { onlyKnown?: boolean; ttlMs?: number } = {}) =>
  ((await stubFor(key)) as unknown as StableAreaApi).admit({ lookup: lookupKey('', key), fingerprint: 'f', leaseMs: 5000, ttlMs: extra.ttlMs ?? 60_000, waitMs: 0, ...extra })
const rows = async (key: string) =>
  runInDurableObject(await stubFor(key), (_o, s) => s.storage.sql.exec('SELECT state FROM records WHERE lookup = ?', lookupKey('', key)).toArray())

describe('admit with onlyKnown', () => {
  it('a key the object has not seen: unknown, and no record is written', async () => {
    const key = newKey()
    expect(await admit(key, { onlyKnown: true })).toEqual({ kind: 'unknown' })
    expect(await rows(key)).toEqual([])
  })

  it('a key in flight, a committed one and a mismatch are answered as usual', async () => {
    const key = newKey()
    const first = await admit(key)
    expect(first.kind).toBe('new')
    expect(await admit(key, { onlyKnown: true })).toMatchObject({ kind: 'in_flight' })
    const stub = (await stubFor(key)) as unknown as StableAreaApi
    if (first.kind !== 'new') throw new Error('unreachable')
    await stub.commit({ lookup: lookupKey('', key), token: first.token, ttlMs: 60_000, reply: { status: 201, headers: [], body: new Uint8Array() } })
    expect(await admit(key, { onlyKnown: true })).toMatchObject({ kind: 'replay', reply: { status: 201 } })
    expect(await stub.admit({ lookup: lookupKey('', key), fingerprint: 'other', leaseMs: 5000, ttlMs: 60_000, waitMs: 0, onlyKnown: true })).toMatchObject({ kind: 'mismatch' })
  })

  it('an expired record is unknown, and stays as it was', async () => {
    const key = newKey()
    expect((await admit(key, { ttlMs: 1 })).kind).toBe('new')
    await runInDurableObject(await stubFor(key), (_o, s) => s.storage.sql.exec('UPDATE records SET expires_at = 0, lease_until = 0 WHERE lookup = ?', lookupKey('', key)))
    expect(await admit(key, { onlyKnown: true })).toEqual({ kind: 'unknown' })
    expect(await rows(key)).toEqual([{ state: 'in_flight' }])
  })
})
