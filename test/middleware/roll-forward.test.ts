import { env } from 'cloudflare:workers'
import { Hono, type Context } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, OnceCommitError, type OnceOptions, PROBLEM_BASE } from '../../src/index.js'
import type { JsonValue, StableAreaApi } from '../../src/durable/types.js'
import { newKey, problemOf } from '../helpers.js'

/**
 * A route whose handler applies its effect, then calls commit() the way
 * `commitWith` says, then returns; `effects` counts how often the effect
 * really happened. Thrown errors answer 500 (Hono's default), as in an app.
 */
function route(options: OnceOptions, commitWith: (c: Context, res: Response) => Promise<void>) {
  let effects = 0
  const app = new Hono().post('/invoices', once({ replayCache: false, ...options }), async (c) => {
    effects++
    const res = c.json({ invoice: effects }, 201)
    await commitWith(c, res)
    return res
  })
  app.onError((err, c) => c.text(String(err), 500))
  const post = (key: string) => app.request('/invoices', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
  return { post, effects: () => effects }
}

/** A client that retries three times after the first answer, as the report did. */
async function fourTimes(post: (key: string) => Response | Promise<Response>) {
  const key = newKey()
  const answers: Response[] = []
  for (let i = 0; i < 4; i++) answers.push(await post(key))
  return answers
}

describe('once commit() was called, no later failure releases the key (issue 16.1)', () => {
  const onDuplicate = (args: JsonValue, c: Context) => c.json({ rebuilt: args }, 201)

  it.each([
    ['args over 1 MiB as JSON', { blob: 'a'.repeat(1_100_000) } as JsonValue, /1100\d+ bytes as JSON/],
    ['args that are not JSON (a BigInt)', { amount: 10n } as unknown as JsonValue, /not JSON/],
    ['args that are not JSON (a cycle)', (() => { const a: Record<string, unknown> = {}; a.self = a; return a })() as JsonValue, /not JSON/],
  ])('%s: the first caller gets its answer, retries get reply-lost, the effect happens once', async (_name, args, why) => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { post, effects } = route({ onDuplicate }, (c, res) => c.var.once.commit(res, { args }))
    const [first, ...retries] = await fourTimes(post)
    expect(first!.status).toBe(201)
    expect(await first!.json()).toEqual({ invoice: 1 })
    for (const retry of retries) {
      expect(retry.status).toBe(500)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(await problemOf(retry)).toMatchObject({ type: `${PROBLEM_BASE}reply-lost`, retryable: false })
    }
    expect(effects()).toBe(1)
    expect(error.mock.calls.some(([m]) => /commit\(\) args .* cannot be stored/.test(String(m)) && why.test(String(m)))).toBe(true)
    error.mockRestore()
  })

  it('args that fit are stored as their JSON (what onDuplicate gets is what was stored)', async () => {
    const { post, effects } = route({ onDuplicate }, (c, res) => c.var.once.commit(res, { args: { id: 'inv-1', at: new Date(0) } as unknown as JsonValue }))
    const [, again] = await fourTimes(post)
    expect(await again!.json()).toEqual({ rebuilt: { id: 'inv-1', at: '1970-01-01T00:00:00.000Z' } })
    expect(effects()).toBe(1)
  })

  it('a reply given to commit() whose body breaks off: reply-lost for duplicates, never a second run', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { post, effects } = route({}, async (c) => {
      const broken = new ReadableStream({ start: (ctl) => ctl.error(new Error('socket closed')) })
      await c.var.once.commit(new Response(broken, { status: 201 }))
    })
    const [, ...retries] = await fourTimes(post)
    for (const retry of retries) expect((await problemOf(retry)).type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(effects()).toBe(1)
    error.mockRestore()
  })

  it('commit() that could not be stored, then a 503 from the handler: the key is kept (reply-lost), not released', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    let down = true
    const flaky = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: (id: DurableObjectId) => {
        const real = env.ONCE.get(id) as unknown as StableAreaApi
        return {
          admit: (r: Parameters<StableAreaApi['admit']>[0]) => real.admit(r),
          renew: (...a: Parameters<StableAreaApi['renew']>) => real.renew(...a),
          release: (...a: Parameters<StableAreaApi['release']>) => real.release(...a),
          commit: (r: Parameters<StableAreaApi['commit']>[0]) => (down ? Promise.reject(new Error('Network connection lost.')) : real.commit(r)),
        }
      },
    } as unknown as typeof env.ONCE
    let reason: unknown
    let effects = 0
    const app = new Hono().post('/pay', once({ namespace: () => flaky, replayCache: false }), async (c) => {
      effects++
      const err = await c.var.once.commit(c.text('paid', 201)).catch((e: unknown) => e)
      reason = err instanceof OnceCommitError ? err.reason : err
      down = false // the stable area is back by the time the handler answers
      return c.text('could not record the payment', 503)
    })
    const key = newKey()
    const pay = () => app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect((await pay()).status).toBe(503)
    expect(reason).toBe('unavailable')
    const retry = await pay()
    expect(retry.status).toBe(500)
    expect((await problemOf(retry)).type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(effects).toBe(1)
    error.mockRestore()
  })
})
