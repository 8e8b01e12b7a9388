/**
 * A failure of the object's app that Hono does not turn into a 500 (a non-Error throw, a reply body that breaks
 * off) is the app's: `handler-failed`, its writes rolled back, never "the store could not be reached" (review s29d R7).
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { edge, install, newAccount, newKey } from './installed.js'

describe('an app failure of an OnceObject route (review s29d R7)', () => {
  it.each(['throw-string', 'broken-body'] as const)('%s: the client gets handler-failed, not stable-area-unavailable', async (mode) => {
    const a = newAccount()
    await install(a, () =>
      new Hono().post('/acct/:name/pay', () => {
        if (mode === 'throw-string') throw 'ledger says no' // eslint-disable-line no-throw-literal
        return new Response(new ReadableStream({ pull: (ctl) => ctl.error(new Error('renderer crashed')) }), { status: 201 })
      }),
    )
    const { send } = edge({ replayCache: false })
    const res = await send(a, 'pay', newKey())
    const body = (await res.json()) as { type?: string; detail?: string }
    expect(body.type).not.toMatch(/stable-area-unavailable$/)
  })
})
