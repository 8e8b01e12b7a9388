/**
 * Review s32 (object): an OnceObject without an app is a 500 `misconfigured` naming the class for a keyed request
 * (contract.test.ts), but a request without a key (or any ungated one, a GET) reaches the keyless path's catch of
 * app failures and is answered `handler-failed`, "The app failed (its error is in the object's log)": the same
 * misconfiguration told as the app's failure, without the class or what to do.
 */
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { PROBLEM_BASE } from '../../src/index.js'
import { edge, stubOf } from '../once-object/installed.js'

describe('an OnceObject without an app, asked without a key', () => {
  it.each([
    ['a POST without a key (required: false)', 'POST'],
    ['an ungated GET', 'GET'],
  ] as const)('%s: 500 misconfigured naming the class, as a keyed request gets', async (_name, method) => {
    const a = `a-${crypto.randomUUID()}`
    await runInDurableObject(stubOf(a), (object: { app: unknown }) => void (object.app = undefined))
    const { send } = edge({ replayCache: false, required: false })
    const res = await send(a, 'deposits', undefined, { method })
    const body = (await res.json()) as { type: string; detail: string }
    expect({ status: res.status, type: body.type }, body.detail).toEqual({ status: 500, type: `${PROBLEM_BASE}misconfigured` })
  })
})
