/**
 * Review s32 (object) M4: docs/durable-state.md's lease-route example (Cart) ran `UPDATE cart SET paid = 1` before
 * looking at the provider's answer, then answered 502 when the charge failed: a lease route's writes commit as they
 * go, so a declined card left the cart paid. The page's example now writes only after a charge; run here as the page
 * has it (test/once-object/docs-examples.ts), with the provider's answers injected.
 */
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { cartApp } from '../once-object/docs-examples.js'
import type { OnceAccount } from '../once-object/fixture.js'
import { edge, install, newAccount, newKey, stubOf } from '../once-object/installed.js'

/** A cart whose payment provider answers `answers` in turn; `keys` gets the idempotency key of each charge. */
async function cart(answers: number[], keys: string[]): Promise<string> {
  const a = newAccount()
  await install(a, (obj) => {
    const sql = obj['ctx'].storage.sql
    sql.exec('CREATE TABLE IF NOT EXISTS cart (paid INTEGER NOT NULL DEFAULT 0)')
    sql.exec('INSERT INTO cart (paid) VALUES (0)')
    return cartApp(obj['ctx'], async (_url, init) => {
      keys.push(new Headers(init.headers).get('idempotency-key') ?? '')
      return new Response('{}', { status: answers.shift() ?? 500 })
    })
  })
  return a
}

const paidOf = (a: string) => runInDurableObject(stubOf(a), (_o: OnceAccount, state) => state.storage.sql.exec<{ paid: number }>('SELECT paid FROM cart').one().paid)

describe("docs/durable-state.md's Cart example", () => {
  it('a declined card: a final 402, recorded; the cart stays unpaid, and the retry is a replay', async () => {
    const keys: string[] = []
    const a = await cart([402], keys)
    const { send } = edge({ replayCache: false })
    const k = newKey()
    const res = await send(a, 'checkout', k)
    const again = await send(a, 'checkout', k)
    expect({ status: res.status, again: again.status, replayed: again.headers.get('idempotent-replayed'), paid: await paidOf(a), charges: keys.length }).toEqual({
      status: 402,
      again: 402,
      replayed: 'true',
      paid: 0,
      charges: 1,
    })
  })

  it("the provider failed: 502, the cart unpaid; the retry charges with the same provider key and marks it paid once", async () => {
    const keys: string[] = []
    const a = await cart([500, 200], keys)
    const { send } = edge({ replayCache: false })
    const k = newKey()
    const res = await send(a, 'checkout', k)
    expect({ status: res.status, paid: await paidOf(a) }).toEqual({ status: 502, paid: 0 })
    const retry = await send(a, 'checkout', k)
    expect({ status: retry.status, paid: await paidOf(a) }).toEqual({ status: 201, paid: 1 })
    expect(keys.length).toBe(2)
    expect(keys[0]).not.toBe('')
    expect(keys[1]).toBe(keys[0])
  })
})
