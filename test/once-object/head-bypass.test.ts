/**
 * With a GET among `methods`, a HEAD is gated too (review s29d R6): the object's app runs the GET route for a HEAD,
 * so an ungated HEAD would apply the GET's effect without a key or a record.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { edge, install, newAccount, newKey, rows, write } from './installed.js'

describe('HEAD with a gated GET (review s29d R6)', () => {
  it('needs a key and applies the GET effect no more than once per key', async () => {
    const a = newAccount()
    await install(a, (obj) =>
      new Hono().get('/acct/:name/claim', (c) => {
        write(obj['ctx'].storage.sql, 'claim', c.req.header('idempotency-key') ?? 'none')
        return c.json({ claimed: true }, 200)
      }),
    )
    const { send } = edge({ methods: ['GET', 'POST'], replayCache: false })
    const k = newKey()
    const get = await send(a, 'claim', k, { method: 'GET' })
    expect(get.status).toBe(200)
    for (let i = 0; i < 3; i++) await send(a, 'claim', k, { method: 'HEAD' })
    const keyless = await send(a, 'claim', undefined, { method: 'HEAD' })
    // Should: HEAD gated with its GET (400 without a key; replayed with one): one effect.
    expect({ effects: await rows(a, 'claim'), keylessHead: keyless.status }).toEqual({ effects: 1, keylessHead: 400 })
  })
})
