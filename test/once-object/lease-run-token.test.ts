/**
 * A lease route's answer is noted per attempt, by a token only the object sets (review s32 object H1): every
 * attempt of one key shares its Once-Request-Id, so an attempt abandoned at maxRunMs that answers later must write
 * into no other attempt's slot, and leave nothing behind in the isolate; a client's own token never reaches the app.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute } from '../../src/index.js'
import { answerSlots, LEASE_RUN_HEADER } from '../../src/durable/once-object-route.js'
import { edge, install, newAccount, newKey, stubOf } from './installed.js'

/** A promise and the function that settles it. */
function deferred(): { promise: Promise<void>; settle: () => void } {
  let settle!: () => void
  const promise = new Promise<void>((resolve) => (settle = resolve))
  return { promise, settle }
}

describe("a lease route's answer, noted by the run's token", () => {
  it('an attempt abandoned at maxRunMs that answers after its run ended leaves no slot behind', async () => {
    const a = newAccount()
    const gate = deferred()
    const marked = deferred()
    await install(a, () =>
      new Hono()
        .use(async (_c, next) => {
          await next()
          marked.settle() // after onceRoute() looked at the answer
        })
        .post('/acct/:name/slow', onceRoute({ lease: true }), async (c) => {
          await gate.promise
          return c.json({ late: true }, 201)
        }),
    )
    const { send } = edge({ maxRunMs: 100, replayCache: false })
    const first = await send(a, 'slow', newKey())
    expect(first.status).toBe(504) // the run ended; its handler still waits
    const before = answerSlots()
    gate.settle()
    await marked.promise
    expect(answerSlots()).toBe(before)
  })

  it.each([
    ['a keyless request', undefined, 'keyless'],
    ['a keyed request of a transaction route', 'key', 'atomic'],
    ['a keyed request of a lease route', 'key', 'lease'],
  ] as const)("%s: the app sees the object's token or none, never the client's", async (_name, keyed, route) => {
    const a = newAccount()
    await install(a, () => {
      const seen = (c: { req: { header(n: string): string | undefined } ; json: (v: unknown, s: 201) => Response }) => c.json({ token: c.req.header(LEASE_RUN_HEADER) ?? null }, 201)
      return new Hono().post('/acct/:name/keyless', seen).post('/acct/:name/atomic', seen).post('/acct/:name/lease', onceRoute({ lease: true }), seen)
    })
    const { send } = edge({ required: false, replayCache: false })
    const res = await send(a, route, keyed && newKey(), { headers: { [LEASE_RUN_HEADER]: 'forged-by-client' } })
    const { token } = (await res.json()) as { token: string | null }
    expect(token).not.toBe('forged-by-client')
    expect(token === null).toBe(route !== 'lease')
  })

  it("the object's own fetch() drops a client's token", async () => {
    const a = newAccount()
    await install(a, () => new Hono().post('/acct/:name/direct', (c) => c.json({ token: c.req.header(LEASE_RUN_HEADER) ?? null }, 201)))
    const res = await stubOf(a).fetch(new Request(`http://object/acct/${a}/direct`, { method: 'POST', headers: { [LEASE_RUN_HEADER]: 'forged-by-client' }, body: '{}' }))
    expect(await res.json()).toEqual({ token: null })
  })
})
