/**
 * A lease route that returned a final status (its write done) while its reply is still being read, or while object
 * middleware around it still runs, or whose body breaks off, took effect: maxRunMs or the broken body never release
 * its key; duplicates get `reply-lost` (docs/once.md's rule, as once() keeps it; review s29d R1).
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute } from '../../src/index.js'
import { edge, install, newAccount, newKey, rows, write } from './installed.js'

const slowStream = (ms: number, text: string) =>
  new ReadableStream<Uint8Array>({
    async start(controller) {
      await scheduler.wait(ms)
      controller.enqueue(new TextEncoder().encode(text))
      controller.close()
    },
  })

describe('a lease route past maxRunMs after it returned a final status: it took effect, the key is kept (reply-lost), the retry never runs it again (review s29d R1)', () => {
  it('a 201 whose body streams past maxRunMs', async () => {
    const a = newAccount()
    await install(a, (obj) =>
      new Hono().post('/acct/:name/receipt', onceRoute({ lease: true }), (c) => {
        write(obj['ctx'].storage.sql, c.req.header('idempotency-key'), 'charged')
        // The effect is done; the receipt takes a while to render/stream.
        return new Response(slowStream(400, '{"receipt":"ok"}'), { status: 201, headers: { 'content-type': 'application/json' } })
      }),
    )
    const { send } = edge({ maxRunMs: 150, replayCache: false })
    const k = newKey()
    const first = await send(a, 'receipt', k)
    const firstStatus = first.status
    await first.arrayBuffer()
    await scheduler.wait(400)
    const retry = await send(a, 'receipt', k)
    await retry.arrayBuffer()
    // Should: the request took effect at its 201; a retry is a replay (or reply-lost), never a second charge.
    expect({ firstStatus, effects: await rows(a, `"${k}"`) }).toEqual({ firstStatus: 500, effects: 1 })
  })

  it('object middleware slow after next() (an audit log)', async () => {
    const a = newAccount()
    await install(a, (obj) =>
      new Hono()
        .use(async (_c, next) => {
          await next()
          await scheduler.wait(400) // after the handler's 201
        })
        .post('/acct/:name/pay', onceRoute({ lease: true }), (c) => {
          write(obj['ctx'].storage.sql, c.req.header('idempotency-key'), 'paid')
          return c.json({ paid: true }, 201)
        }),
    )
    const { send } = edge({ maxRunMs: 150, replayCache: false })
    const k = newKey()
    const first = await send(a, 'pay', k)
    const firstStatus = first.status
    await scheduler.wait(400)
    await send(a, 'pay', k)
    expect({ firstStatus, effects: await rows(a, `"${k}"`) }).toEqual({ firstStatus: 500, effects: 1 })
  })

  it('a 201 whose body stream errors after the write', async () => {
    const a = newAccount()
    await install(a, (obj) =>
      new Hono().post('/acct/:name/broken', onceRoute({ lease: true }), (c) => {
        write(obj['ctx'].storage.sql, c.req.header('idempotency-key'), 'charged')
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.error(new Error('renderer crashed'))
          },
        })
        return new Response(body, { status: 201 })
      }),
    )
    const { send } = edge({ replayCache: false })
    const k = newKey()
    const first = await send(a, 'broken', k)
    const firstStatus = first.status
    const retry = await send(a, 'broken', k)
    const retryStatus = retry.status
    // Should (as once()): the final status was returned, so the key is kept and duplicates get reply-lost.
    expect({ firstStatus, retryStatus, effects: await rows(a, `"${k}"`) }).toMatchObject({ effects: 1 })
  })
})
