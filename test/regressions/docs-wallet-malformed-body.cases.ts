/**
 * Review s32 (object) M3: docs/durable-state.md's method-call example (Wallet) parsed the body with `c.req.json()`
 * in its `call` option, so a client's malformed JSON threw in the edge and Hono answered a bare 500 (a 5xx, which
 * hono-once/client retries until its deadline). The page's example now parses without a throw and lets the method
 * refuse; run here as the page has it (test/once-object/docs-examples.ts), against bad input and a refusal.
 */
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { WalletMethods, walletOptions, walletTables } from '../once-object/docs-examples.js'
import type { OnceAccount } from '../once-object/fixture.js'
import { addMethods, edge, newAccount, newKey, stubOf } from '../once-object/installed.js'

/** A wallet (an OnceAccount with the page's table and method) holding `cents`. */
async function wallet(cents: number): Promise<string> {
  const a = newAccount()
  await addMethods(a, (obj) => {
    walletTables(obj['ctx'])
    if (cents > 0) obj['ctx'].storage.sql.exec('INSERT INTO ledger (cents, balance) VALUES (?, ?)', cents, cents)
    return { withdraw: WalletMethods.prototype.withdraw }
  })
  return a
}

const balanceOf = (a: string) =>
  runInDurableObject(stubOf(a), (_o: OnceAccount, state) => state.storage.sql.exec<{ b: number }>('SELECT balance AS b FROM ledger ORDER BY seq DESC LIMIT 1').toArray()[0]?.b ?? 0)

describe("docs/durable-state.md's Wallet example", () => {
  it.each([
    ['malformed JSON', '{"cents": 5', 400],
    ['cents that is a string', '{"cents":"5"}', 400],
    ['no cents', '{}', 400],
    ['a fraction', '{"cents":2.5}', 400],
    ['more than the balance', '{"cents":500}', 409],
  ] as const)('%s: a final 4xx, recorded and replayed; nothing withdrawn', async (_name, body, status) => {
    const a = await wallet(100)
    const { send } = edge({ replayCache: false, ...walletOptions })
    const k = newKey()
    const res = await send(a, 'withdrawals', k, { body })
    expect(res.status, await res.text()).toBe(status)
    const again = await send(a, 'withdrawals', k, { body })
    expect({ status: again.status, replayed: again.headers.get('idempotent-replayed') }).toEqual({ status, replayed: 'true' })
    expect(await balanceOf(a)).toBe(100)
  })

  it('withdraws once for a key, and answers the balance', async () => {
    const a = await wallet(100)
    const { send } = edge({ replayCache: false, ...walletOptions })
    const k = newKey()
    const res = await send(a, 'withdrawals', k, { body: '{"cents":30}' })
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 201, body: { balance: 70 } })
    expect((await send(a, 'withdrawals', k, { body: '{"cents":30}' })).headers.get('idempotent-replayed')).toBe('true')
    expect(await balanceOf(a)).toBe(70)
  })
})
