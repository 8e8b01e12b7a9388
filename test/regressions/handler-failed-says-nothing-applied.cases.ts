/**
 * Review s32 (object) M1: an OnceObject app failure Hono does not answer (a thrown non-Error) is the
 * `handler-failed` problem, whose catalogue title was "The handler threw; nothing was applied". That is true inside
 * a transaction (a transaction route, a method call), but a lease route's writes and a keyless request's writes are
 * not rolled back; and the lease route's detail said its key was free "for the retry" next to `retryable: false`.
 * Now the title claims nothing about writes, and each path's detail says what became of them.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceRoute } from '../../src/index.js'
import { edge, install, newAccount, newKey, rows, write } from '../once-object/installed.js'

describe('handler-failed from an OnceObject app that wrote, then threw a non-Error', () => {
  it.each([
    ['a lease route (keyed)', 'lease', true, 1, /What it wrote before stays \(a lease route's writes are not rolled back\), and its key is released/],
    ['a lease route, without a key (required: false)', 'lease', false, 1, /What it wrote before stays \(a request without a key runs outside a transaction\)/],
    ['a transaction route, without a key (required: false)', 'atomic', false, 1, /What it wrote before stays \(a request without a key/],
    ['a transaction route (keyed)', 'atomic', true, 0, /Its writes were rolled back: nothing was applied/],
  ] as const)('%s: the problem says what became of its writes, and nothing else', async (_name, route, keyed, kept, writes) => {
    const a = newAccount()
    await install(a, (obj) => {
      const fail = (c: { req: { header(n: string): string | undefined } }): Response => {
        write(obj['ctx'].storage.sql, c.req.header('x-tag'), 'charged')
        throw 'notify failed' // eslint-disable-line no-throw-literal
      }
      return new Hono().post('/acct/:name/lease', onceRoute({ lease: true }), fail).post('/acct/:name/atomic', fail)
    })
    const { send } = edge({ replayCache: false, required: false })
    const tag = newKey()
    const res = await send(a, route, keyed ? newKey() : undefined, { headers: { 'x-tag': tag } })
    const problem = (await res.json()) as { type: string; title: string; detail: string; retryable: boolean }
    expect(await rows(a, tag)).toBe(kept)
    expect({ status: res.status, type: problem.type, title: problem.title, retryable: problem.retryable }).toEqual({
      status: 500,
      type: 'https://hono-once.dev/problems/handler-failed',
      title: 'The handler failed',
      retryable: false,
    })
    expect(problem.detail).toMatch(writes)
    expect(problem.detail).not.toMatch(/for the retry|notify failed/)
  })
})
