/**
 * Review s32 (object): onceRoute() notes a lease route's answer by its request id, which every attempt of one key
 * shares. An attempt abandoned at maxRunMs that answers later (the docs' Cart example answers 503 once its signal
 * is aborted) writes its status into the slot of the attempt running now; when that attempt's route answered 201
 * and middleware around it then fails or runs long (the cases the s29e fix keeps the key for), runLeased reads the
 * abandoned attempt's 503, releases the key, and the next retry applies the effect a second time.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute } from '../../src/index.js'
import { edge, install, newAccount, newKey, rows, write } from '../once-object/installed.js'

const MAX_RUN_MS = 1000

describe('a lease route attempt abandoned at maxRunMs that answers later', () => {
  it.each<[string, (n: number) => MiddlewareHandler]>([
    [
      'the retry\'s middleware then fails (a thrown non-Error)',
      () => async (c, next) => {
        await next()
        if (c.get('attempt' as never) === 2) {
          await scheduler.wait(600) // the abandoned attempt answers meanwhile
          throw 'audit log write failed' // eslint-disable-line no-throw-literal
        }
      },
    ],
    [
      'the retry\'s middleware then runs past maxRunMs',
      () => async (c, next) => {
        await next()
        if (c.get('attempt' as never) === 2) await scheduler.wait(MAX_RUN_MS + 200)
      },
    ],
  ])('does not free the key of a retry whose route answered 201 when %s: one effect', async (_name, around) => {
    const a = newAccount()
    await install(a, (obj) => {
      let attempts = 0
      return new Hono().use(around(0)).post('/acct/:name/pay', onceRoute({ lease: true }), async (c) => {
        const n = ++attempts
        c.set('attempt' as never, n as never)
        if (n === 1) {
          // A slow call out, past maxRunMs; then, as docs/durable-state.md's Cart does, it sees its signal and stops.
          await scheduler.wait(MAX_RUN_MS + 300)
          if (c.req.raw.signal.aborted) return c.json({ abandoned: true }, 503)
        }
        write(obj['ctx'].storage.sql, c.req.header('idempotency-key'), `attempt ${n}`)
        return c.json({ paid: true }, 201)
      })
    })
    const { send } = edge({ maxRunMs: MAX_RUN_MS, replayCache: false })
    const k = newKey()
    const first = await send(a, 'pay', k)
    expect(first.status).toBe(504) // abandoned, key released: the client retries
    const retry = await send(a, 'pay', k) // its route writes and answers 201; the middleware after it fails / runs long
    await retry.arrayBuffer()
    await scheduler.wait(400)
    const third = await send(a, 'pay', k)
    await third.arrayBuffer()
    // The retry's route took effect (201): its key must be kept (reply-lost), never run a third time.
    expect({ retry: retry.status, third: third.status, effects: await rows(a, `"${k}"`) }).toEqual({ retry: 500, third: 500, effects: 1 })
  })
})
