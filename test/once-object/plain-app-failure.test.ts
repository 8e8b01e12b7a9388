/**
 * A keyless request's app failure (a thrown non-Error, a body that broke off) is handler-failed, not a 503 that says
 * the object could not be reached (review s29e E5).
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { edge, install, newAccount } from './installed.js'

describe('ungated app failures are the app\'s, not "store unreachable" (review s29e E5)', () => {
  it('an ungated GET whose route throws a non-Error', async () => {
    const a = newAccount()
    await install(a, () =>
      new Hono().get('/acct/:name/balance', () => {
        throw 'balance unavailable' // eslint-disable-line no-throw-literal
      }),
    )
    const { send } = edge({ replayCache: false })
    const res = await send(a, 'balance', undefined, { method: 'GET' })
    const body = (await res.json()) as { type?: string; detail?: string }
    expect({ status: res.status, type: body.type }, body.detail).toEqual({ status: 500, type: 'https://hono-once.dev/problems/handler-failed' })
  })

  it('a keyless POST (required: false) whose 200 body breaks off', async () => {
    const a = newAccount()
    await install(a, () =>
      new Hono().post('/acct/:name/report', () =>
        new Response(new ReadableStream({ pull: (ctl) => ctl.error(new Error('renderer crashed')) }), { status: 200 }),
      ),
    )
    const { send } = edge({ replayCache: false, required: false })
    const res = await send(a, 'report', undefined)
    const body = (await res.json()) as { type?: string; detail?: string }
    expect({ status: res.status, type: body.type }, body.detail).toEqual({ status: 500, type: 'https://hono-once.dev/problems/handler-failed' })
  })
})
