/**
 * The bank example with its state in Durable Objects (examples/bank-object):
 * one `Account` object per account, deposits applied once through
 * `onceObject()`, and `hono-once/client` unchanged in front of it.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { createOnceFetch, onceInfo } from '../../src/client/index.js'
import { app } from '../../examples/bank-object/worker.js'

const account = () => `acct-${crypto.randomUUID()}`
const post = (id: string, what: 'deposits' | 'withdrawals' | 'payments', key: string, body: unknown) =>
  app.request(
    `/accounts/${id}/${what}`,
    { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` }, body: JSON.stringify(body) },
    env,
  )
const stub = (id: string) => env.ACCOUNT.get(env.ACCOUNT.idFromName(id))

describe('bank with OnceObject accounts', () => {
  it('applies a retried deposit once: one ledger row, tagged with the request id the client saw', async () => {
    const id = account()
    const first = await post(id, 'deposits', 'dep-1', { amount: 100 })
    expect(first.status).toBe(201)
    const body = (await first.json()) as { balance: number; depositId: string }
    expect(body.balance).toBe(100)
    const again = await post(id, 'deposits', 'dep-1', { amount: 100 })
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.json()).toEqual(body)
    expect(await stub(id).ledger()).toEqual([{ requestId: body.depositId, cents: 100, balance: 100 }])
    const read = await app.request(`/accounts/${id}`, {}, env)
    expect(await read.json()).toEqual({ id, balance: 100 })
  })

  it("stores a refusal as final: an overdraft's 409 is replayed, never re-decided", async () => {
    const id = account()
    expect((await post(id, 'withdrawals', 'w-1', { amount: 50 })).status).toBe(409)
    await post(id, 'deposits', 'dep-1', { amount: 100 })
    const again = await post(id, 'withdrawals', 'w-1', { amount: 50 })
    expect(again.status).toBe(409)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await stub(id).balance()).toBe(100)
  })

  it("answers the validator's 400 and stores it; a plain RPC method still works on the stub", async () => {
    const id = account()
    expect((await post(id, 'deposits', 'bad', { amount: -1 })).status).toBe(400)
    expect(await stub(id).deposit(7)).toBe(7)
  })

  it('applies a payment (a method call) once, and stores its refusal as final', async () => {
    const id = account()
    expect((await post(id, 'payments', 'p-0', { amount: 500 })).status).toBe(409)
    await post(id, 'deposits', 'dep-1', { amount: 100 })
    const paid = await post(id, 'payments', 'p-1', { amount: 30 })
    expect(paid.status).toBe(201)
    const receipt = (await paid.json()) as { paid: number; balance: number; paymentId: string }
    expect(receipt).toEqual({ paid: 30, balance: 70, paymentId: expect.stringMatching(/^[0-9a-f-]{36}$/) })
    const again = await post(id, 'payments', 'p-1', { amount: 30 })
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.json()).toEqual(receipt)
    expect((await stub(id).ledger()).at(-1)).toEqual({ requestId: receipt.paymentId, cents: -30, balance: 70 })
    // The refusal was decided once: replayed even now that the balance would allow it.
    expect((await post(id, 'payments', 'p-0', { amount: 500 })).status).toBe(409)
    expect((await post(id, 'payments', 'bad', { amount: -5 })).status).toBe(400)
    expect(await stub(id).balance()).toBe(70)
  })

  it('works with hono-once/client unchanged: a lost answer is retried with the same key and replayed', async () => {
    const id = account()
    let calls = 0
    const onceFetch = createOnceFetch({
      retries: 3,
      baseDelayMs: 1,
      fetch: async (request) => {
        const res = await app.request(request, undefined, env)
        // The first answer is lost on the way back, after the deposit was applied.
        if (++calls === 1) throw new TypeError('network connection lost')
        return res
      },
    })
    const res = await onceFetch(`http://bank/accounts/${id}/deposits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 100 }),
    })
    expect(res.status).toBe(201)
    expect(onceInfo(res)).toMatchObject({ attempts: 2, replayed: true })
    expect(await stub(id).balance()).toBe(100)
  })
})
