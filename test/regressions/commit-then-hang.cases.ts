import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, type OnceOptions } from '../../src/index.js'
import { commitsUnderControl, watch } from '../commits-under-control.js'
import { newKey } from '../helpers.js'

/**
 * Review s34 (answer first) #1: once a final commit of the lease had landed, the next renewal found the record
 * committed (false) and the renewal loop stopped without re-arming the run deadline, so a handler that called
 * `commit(res)` and then hung was never timed out: its signal never aborted and its client was never answered.
 * With the defaults (maxRunMs 30 s > leaseMs / 3) a renewal always comes first; a slow commit still on its way at the
 * deadline (renewed past it since 1562697) widened it. Admission.#rearm: the run deadline stands without renewing.
 */
function committingThenHanging(options: OnceOptions) {
  const app = new Hono()
  const aborted: unknown[] = []
  app.post('/jobs', once(options), async (c) => {
    c.var.once.signal.addEventListener('abort', () => aborted.push(c.var.once.signal.reason))
    await c.var.once.commit(c.json({ accepted: true }, 201))
    await new Promise(() => {}) // hangs: its client gets the committed reply at maxRunMs
    return c.text('never', 500)
  })
  const post = (key: string) => Promise.resolve(app.request('/jobs', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{}' }, env))
  return { post, aborted }
}

/** Bounded wait for `p`: its response, or 'no answer' after `ms`. */
async function within(p: Promise<Response>, ms: number): Promise<{ status: number | 'no answer'; body?: unknown }> {
  const seen = watch(p)
  for (let waited = 0; waited < ms && !seen.settled(); waited += 20) await scheduler.wait(20)
  if (!seen.settled()) return { status: 'no answer' }
  const res = await p
  return { status: res.status, body: await res.json() }
}

describe('a handler that commits its reply, then hangs, is timed out at maxRunMs (review s34 #1)', () => {
  it('with a renewal between the commit and the deadline: the client gets the committed reply, the signal aborts', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    // leaseMs 1000 renews every ~333 ms: the first renewal after the commit finds the record committed.
    const { post, aborted } = committingThenHanging({ replayCache: false, leaseMs: 1000, maxRunMs: 1000 })
    const answer = await within(post(newKey()), 4000)
    expect({ answer, aborted: aborted.length }).toEqual({ answer: { status: 201, body: { accepted: true } }, aborted: 1 })
    warn.mockRestore()
  })

  it('with the commit still on its way at the deadline: answered once it lands', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const control = commitsUnderControl()
    const { post, aborted } = committingThenHanging({ namespace: () => control.ns, replayCache: false, leaseMs: 1000, maxRunMs: 300 })
    control.set('hold')
    const answering = post(newKey())
    await control.sent()
    await scheduler.wait(800) // past maxRunMs: the lease is renewed while the commit is on its way
    control.open()
    const answer = await within(answering, 4000)
    expect({ answer, aborted: aborted.length }).toEqual({ answer: { status: 201, body: { accepted: true } }, aborted: 1 })
    warn.mockRestore()
  })
})
