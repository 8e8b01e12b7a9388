import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, type OnceOptions } from '../../src/index.js'
import { commitsUnderControl, watch } from '../commits-under-control.js'
import { newKey } from '../helpers.js'
import { endLease } from '../../src/testing.js'
import { shortenCommitBound } from '../../src/middleware/admission.js'

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

/**
 * Review s35 of 24bb4ae. #1: a renewal that found the record committed while the commit's answer was still on its way
 * (answerFirst false, or no execution context) re-armed the bare run deadline, at once when it had passed: a handler
 * that answered in time was timed out, its signal aborted and its answer replaced by the stored replay (its
 * Set-Cookie gone). #2 (older): a renewal that found the key taken over stopped renewing and armed nothing, so a
 * handler that ignores its aborted signal was never timed out and its client never answered.
 */
describe('the run deadline after renewal ends (review s35)', () => {
  it('a commit that landed, its answer slow past maxRunMs: the handler that answered in time is not timed out', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const control = commitsUnderControl()
    const app = new Hono()
    const aborted: unknown[] = []
    app.post('/jobs', once({ namespace: () => control.ns, replayCache: false, answerFirst: false, leaseMs: 1000, maxRunMs: 300 }), (c) => {
      c.var.once.signal.addEventListener('abort', () => aborted.push(c.var.once.signal.reason))
      c.header('set-cookie', 'session=first-caller')
      return c.json({ accepted: true }, 201)
    })
    control.set('late')
    const answering = Promise.resolve(app.request('/jobs', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env))
    await control.sent()
    // Past maxRunMs and past a renewal (every ~333 ms), which finds the record committed: the commit landed.
    for (let i = 0; i < 100 && control.renewals() < 1; i++) await scheduler.wait(20)
    await scheduler.wait(200) // time for a deadline re-armed by it to fire (at once: maxRunMs has passed)
    control.open()
    const res = await answering
    const timedOut = warn.mock.calls.some(([m]) => String(m).includes('ran past maxRunMs'))
    expect({ status: res.status, cookie: res.headers.get('set-cookie'), body: await res.json(), aborted, timedOut }).toEqual({
      status: 201,
      cookie: 'session=first-caller',
      body: { accepted: true },
      aborted: [],
      timedOut: false,
    })
    warn.mockRestore()
  })

  it('a handler whose key was taken over, and that ignores its aborted signal, is still timed out at maxRunMs: its client gets a retryable 504', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const app = new Hono()
    let runs = 0
    const aborted: unknown[] = []
    app.post('/jobs', once({ replayCache: false, leaseMs: 1000, maxRunMs: 1500 }), async (c) => {
      if (++runs > 1) return c.json({ run: runs }, 201)
      c.var.once.signal.addEventListener('abort', () => aborted.push(c.var.once.signal.reason))
      await new Promise(() => {}) // hangs, deaf to its signal
      return c.text('never', 500)
    })
    const key = newKey()
    const post = () => Promise.resolve(app.request('/jobs', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{}' }, env))
    const first = post()
    for (let i = 0; i < 100 && runs === 0; i++) await scheduler.wait(5)
    expect(await endLease(env.ONCE, key)).toBe(true)
    const second = await post() // takes the key over: attempt 2 runs
    expect({ status: second.status, body: await second.json() }).toEqual({ status: 201, body: { run: 2 } })
    const answer = await within(first, 4000)
    expect({ status: answer.status, retryable: (answer.body as { retryable?: boolean } | undefined)?.retryable, aborted: aborted.length }).toEqual({ status: 504, retryable: true, aborted: 1 })
    warn.mockRestore()
  })
})

/**
 * Review s36 #4: a commit that neither lands nor fails keeps its lease renewed for COMMIT_RENEW_MS past maxRunMs (30 s,
 * shortened here to 900 ms); at that bound a client still waiting for it (answerFirst: false) gets its handler's own
 * reply, once, and the log says the commit has not landed. It hung before (a reply-lost commit queued behind the stuck one).
 */
/**
 * With the bound shortened to 900 ms: one request whose commit `mode` holds (`hold`: never sent on; `late`: landed, its
 * answer held), and what its client saw 600 ms after the commit went out (past maxRunMs, within the bound) and by 4 s.
 */
async function atTheBound(mode: 'hold' | 'late', routeOf: (control: ReturnType<typeof commitsUnderControl>) => (key: string) => Promise<Response>, logLine: string) {
  const restore = shortenCommitBound(900)
  const error = vi.spyOn(console, 'error').mockImplementation(() => {})
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
  const control = commitsUnderControl()
  try {
    const post = routeOf(control)
    control.set(mode)
    const answering = post(newKey())
    const seen = watch(answering)
    await control.sent()
    await scheduler.wait(600) // past maxRunMs (300 ms), within the bound (300 + 900 ms): still waiting for the commit
    const waitingAtHalf = !seen.settled()
    const res = await within(answering, 4000)
    const logged = error.mock.calls.some(([m]) => String(m).includes(logLine))
    return { waitingAtHalf, res, logged, commits: control.calls(), renewed: control.renewals() > 0, answering }
  } finally {
    control.open()
    restore()
    error.mockRestore()
    warn.mockRestore()
  }
}

describe('a commit that never lands, at the bound past maxRunMs', () => {
  it("answers the waiting client with its handler's own reply, not before the bound, and logs why", async () => {
    const seen = await atTheBound(
      'hold',
      (control) => {
        const app = new Hono()
        app.post('/jobs', once({ namespace: () => control.ns, replayCache: false, answerFirst: false, leaseMs: 1000, maxRunMs: 300 }), (c) => {
          c.header('set-cookie', 'session=first-caller')
          return c.json({ accepted: true }, 201)
        })
        return (key) => Promise.resolve(app.request('/jobs', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{}' }, env))
      },
      'has not landed 900 ms past maxRunMs',
    )
    const { waitingAtHalf, res, logged, commits } = seen
    expect({ waitingAtHalf, res, logged, commits }).toEqual({ waitingAtHalf: true, res: { status: 201, body: { accepted: true } }, logged: true, commits: 1 })
    expect((await seen.answering).headers.get('set-cookie')).toBe('session=first-caller')
  })

  // Review s37b: the same bound where renewal has ended (a renewal found the record committed, the commit's answer held).
  it('gives up on a commit that landed but is never answered, at the bound, with a log line', async () => {
    const { waitingAtHalf, res, logged, renewed } = await atTheBound(
      'late',
      (control) => committingThenHanging({ namespace: () => control.ns, replayCache: false, leaseMs: 1000, maxRunMs: 300 }).post,
      'has not been answered 900 ms past maxRunMs',
    )
    expect({ waitingAtHalf, res, logged, renewed }).toEqual({ waitingAtHalf: true, res: { status: 201, body: { accepted: true } }, logged: true, renewed: true })
  })
})
