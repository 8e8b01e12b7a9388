/**
 * A lease route's non-final answer is read within maxRunMs: a body that never ends cannot hang the call (review s29e E3).
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute } from '../../src/index.js'
import { edge, install, newAccount, newKey } from './installed.js'

describe('a non-final lease reply whose body never ends (review s29e E3)', () => {
  it('is answered within maxRunMs (a retryable 504 or the 503), not never', async () => {
    const a = newAccount()
    await install(a, () =>
      new Hono().post('/acct/:name/pay', onceRoute({ lease: true }), () =>
        // An upstream's 503 streamed through (SSE-like): its body never closes.
        new Response(new ReadableStream({ start: (ctl) => ctl.enqueue(new TextEncoder().encode('{"retry":')) }), { status: 503 }),
      ),
    )
    const { send } = edge({ maxRunMs: 150, replayCache: false })
    const outcome = await Promise.race([
      Promise.resolve(send(a, 'pay', newKey())).then((r) => r.status),
      scheduler.wait(3000).then(() => 'still waiting after 3 s'),
    ])
    expect(outcome).not.toBe('still waiting after 3 s')
  })
})
