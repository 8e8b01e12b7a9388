/**
 * A lease route that answered a final status took effect (docs/once.md's rule, as once() keeps it): whatever happens
 * after (its body streams past maxRunMs or breaks off; middleware around the route runs past maxRunMs, or fails with
 * an Error or a thrown non-Error; a middleware gave the route another request object) never gives its key back.
 * The client and its retries get reply-lost; the route is never run again. Reviews s29d R1 and s29e E1, E2.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute, PROBLEM_BASE } from '../../src/index.js'
import { edge, install, newAccount, newKey, rows, write } from './installed.js'

/** An answer whose body is `make()`'s stream. */
const streamed = (make: () => ReadableStream<Uint8Array>) => () => new Response(make(), { status: 201, headers: { 'content-type': 'application/json' } })

/** Runs a lease route that writes its effect and answers `answer()`, behind `around`, twice with one key. */
async function twice(around: MiddlewareHandler[], answer: (c: { json: (v: unknown, s: 201) => Response }) => Response, maxRunMs = 150) {
  const a = newAccount()
  await install(a, (obj) => {
    const app = new Hono()
    for (const m of around) app.use(m)
    return app.post('/acct/:name/pay', onceRoute({ lease: true }), (c) => {
      write(obj['ctx'].storage.sql, c.req.header('idempotency-key'), 'paid')
      return answer(c)
    })
  })
  const { send } = edge({ maxRunMs, replayCache: false })
  const k = newKey()
  const first = await send(a, 'pay', k)
  const firstBody = (await first.json()) as { type?: string }
  await scheduler.wait(maxRunMs + 300) // whatever was still running has ended
  const retry = await send(a, 'pay', k)
  return { first: { status: first.status, type: firstBody.type }, retry: { status: retry.status, replayed: retry.headers.get('idempotent-replayed'), type: ((await retry.json()) as { type?: string }).type }, effects: await rows(a, `"${k}"`) }
}

const lost = { status: 500, type: `${PROBLEM_BASE}reply-lost` }
const json = (c: { json: (v: unknown, s: 201) => Response }) => c.json({ paid: true }, 201)

describe('a lease route that answered a final status keeps its key', () => {
  it.each<[string, MiddlewareHandler[]]>([
    [
      'middleware around it runs past maxRunMs (an audit log)',
      [
        async (_c, next) => {
          await next()
          await scheduler.wait(400)
        },
      ],
    ],
    [
      'middleware around it throws an Error after it (Hono answers 500)',
      [
        async (_c, next) => {
          await next()
          throw new Error('audit log write failed')
        },
      ],
    ],
    [
      'middleware around it throws a non-Error after it',
      [
        async (_c, next) => {
          await next()
          throw 'audit log write failed' // eslint-disable-line no-throw-literal
        },
      ],
    ],
    [
      'a middleware gave the route another request object, and one after it runs past maxRunMs',
      [
        async (_c, next) => {
          await next()
          await scheduler.wait(400)
        },
        async (c, next) => {
          c.req.raw = new Request(c.req.raw, { headers: { ...Object.fromEntries(c.req.raw.headers), 'x-normalised': '1' } })
          await next()
        },
      ],
    ],
  ])('%s: reply-lost, replayed, one effect', async (_name, around) => {
    expect(await twice(around, json)).toEqual({ first: lost, retry: { ...lost, replayed: 'true' }, effects: 1 })
  })

  it('its body streams past maxRunMs: reply-lost, replayed, one effect', async () => {
    const slow = streamed(
      () =>
        new ReadableStream<Uint8Array>({
          async start(controller) {
            await scheduler.wait(400)
            controller.enqueue(new TextEncoder().encode('{"receipt":"ok"}'))
            controller.close()
          },
        }),
    )
    expect(await twice([], slow)).toEqual({ first: lost, retry: { ...lost, replayed: 'true' }, effects: 1 })
  })

  it('its body breaks off: reply-lost, replayed, one effect', async () => {
    const broken = streamed(() => new ReadableStream<Uint8Array>({ pull: (controller) => controller.error(new Error('renderer crashed')) }))
    expect(await twice([], broken, 1000)).toEqual({ first: lost, retry: { ...lost, replayed: 'true' }, effects: 1 })
  })
})
