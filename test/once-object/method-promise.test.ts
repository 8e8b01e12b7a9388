/**
 * An async method named by a method call is refused before it runs (review s29d R2): its work after the first await
 * would run after the call's transaction and without its record, applied again by every retry of the key.
 */
import { describe, expect, it } from 'vitest'
import { PROBLEM_BASE } from '../../src/index.js'
import { addMethods, edge, newAccount, newKey, rows, write } from './installed.js'

describe('an async method named by a method call', () => {
  it('is a 500 misconfigured that names it, every time, and nothing of it runs', async () => {
    const a = newAccount()
    await addMethods(a, (obj) => ({
      // The common slip: `async` by habit, one await (a KV read, a helper) before the SQL write.
      async charge(key: string) {
        await Promise.resolve()
        write(obj['ctx'].storage.sql, key, 'charged')
        return { charged: true }
      },
    }))
    const { send } = edge({ replayCache: false, call: (c) => ({ method: 'charge', args: [c.req.header('idempotency-key') ?? ''], status: 201 }) })
    const k = newKey()
    for (let i = 0; i < 3; i++) {
      const res = await send(a, 'charge', k)
      expect(res.status).toBe(500)
      expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, detail: expect.stringMatching(/charge is async: a method call runs synchronously in one transaction/) })
    }
    await scheduler.wait(20) // what an async tail would have written by now
    expect(await rows(a, `"${k}"`)).toBe(0)
  })
})
