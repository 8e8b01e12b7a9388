/**
 * Review s31 (docs) F1: `reply-lost` had two statuses, 500 when once() or onceObject() stored it and 502 when proxy()
 * committed an applied answer over maxResponseBytes (a second, hand-built problem body in shared/applied.ts, without
 * instance, idempotency_key or request_id). One type has one status, title and retryable, whoever answers it
 * (shared/problem.ts; docs/errors.md, docs/architecture.md): every problem body the code builds takes them from the
 * catalogue, which this file checks by builder (and problem-bodies-from-catalogue.node.test.ts by source).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createOnceFetch, onceInfo } from '../../src/client/index.js'
import { once, PROBLEM_BASE, proxy } from '../../src/index.js'
import { aboutRequest, answerPruned, replyLost, tooLargeAnswer } from '../../src/shared/applied.js'
import { problemParts } from '../../src/shared/problem.js'
import { lostReply } from '../../src/durable/once-object-reply.js'
import { newKey } from '../helpers.js'

const fetcherOf = (app: Hono) => ({ fetch: (r: Request) => app.fetch(r) }) as unknown as Fetcher
const post = (app: Hono, path: string, key: string) =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{}' }, env)
const decode = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>

/** once() + proxy(): the origin applied the write, its answer is over maxResponseBytes. */
function bigAnswerApp() {
  let applied = 0
  const origin = new Hono().post('/big', (c) => (applied++, c.text('y'.repeat(4096), 201)))
  const app = new Hono()
  app.post('/big', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }], maxResponseBytes: 1024 }))
  return { app, applied: () => applied }
}

/** once(): commit() args over 1 MiB, so duplicates get the reply-lost once() stores itself. */
function bigArgsApp() {
  return new Hono().post('/inv', once({ onDuplicate: (_a, c) => c.text('x') }), async (c) => {
    const res = c.text('created', 201)
    await c.var.once.commit(res, { args: { blob: 'x'.repeat(1024 * 1024 + 10) } })
    return res
  })
}

describe('reply-lost has one status, 500, whoever answers it (errors.md; architecture.md: "one type, one status and title")', () => {
  it('committed by proxy() for an applied answer over maxResponseBytes: 500, and its body says 500, retryable: false', async () => {
    const { app, applied } = bigAnswerApp()
    const key = newKey()
    const res = await post(app, '/big', key)
    const body = (await res.json()) as { type: string; status: number; retryable: boolean }
    expect(body.type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect({ status: res.status, bodyStatus: body.status, retryable: body.retryable }).toEqual({ status: 500, bodyStatus: 500, retryable: false })
    // The retry replays it (same status), and the origin applied the write once.
    const again = await post(app, '/big', key)
    expect({ status: again.status, replayed: again.headers.get('idempotent-replayed'), applied: applied() }).toEqual({ status: 500, replayed: 'true', applied: 1 })
  })

  it("proxy()'s reply-lost carries the members errors.md lists for hono-once's own errors (instance, idempotency_key, request_id)", async () => {
    const { app } = bigAnswerApp()
    const key = newKey()
    const res = await post(app, '/big', key)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ instance: '/big', idempotency_key: key, request_id: expect.any(String) })
  })

  it("once()'s own reply-lost and proxy()'s have the same status, title and retryable", async () => {
    const local = bigArgsApp()
    const key = newKey()
    await post(local, '/inv', key)
    const fromOnce = await post(local, '/inv', key)
    const fromProxy = await post(bigAnswerApp().app, '/big', newKey())
    const fixed = async (res: Response) => {
      const { type, title, status, retryable } = (await res.json()) as Record<string, unknown>
      return { http: res.status, type, title, status, retryable }
    }
    const a = await fixed(fromOnce)
    expect(a).toMatchObject({ http: 500, type: `${PROBLEM_BASE}reply-lost` })
    expect(await fixed(fromProxy)).toEqual(a)
  })

  it('through hono-once/client it is a 500, final (retryable: false), one attempt, as client.md says', async () => {
    const local = bigArgsApp()
    const f = createOnceFetch({ fetch: (r) => local.request(r, undefined, env), budget: false })
    const headers = { 'idempotency-key': `"${newKey()}"` }
    await f('http://x/inv', { method: 'POST', headers, body: '{}' })
    const dup = await f('http://x/inv', { method: 'POST', headers, body: '{}' })
    expect(onceInfo(dup)?.attempts).toBe(1)
    expect(dup.status).toBe(500)
  })
})

describe('every problem body the code builds takes its status, title and retryable from the catalogue', () => {
  const catalogue = (kind: Parameters<typeof problemParts>[0]) => {
    const { status, body } = problemParts(kind, { detail: '' })
    const { title, retryable } = JSON.parse(body) as { title: string; retryable: boolean }
    return { status, title, retryable }
  }
  const about = aboutRequest({ path: '/deposits?x=1' }, { requestId: 'r-1', key: 'dep-1' })

  it.each([
    ['replyLost()', () => replyLost(201, 'maxResponseBytes (8 bytes)', about)],
    ['answerPruned()', () => answerPruned(7, about)],
    ['tooLargeAnswer()', () => tooLargeAnswer({ status: 201, headers: [['once-applied', '?1']] }, 8, true, about)!],
    ["the OnceObject's lostReply()", () => lostReply('gone', 'r-1', 'dep-1')],
  ])('%s: the catalogue\'s reply-lost, with the request it is about', (_name, build) => {
    const built = build()
    const body = decode(built.body)
    expect({ http: built.status, status: body.status, title: body.title, retryable: body.retryable }).toEqual({ http: 500, ...catalogue('reply-lost') })
    expect(body.type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(body.request_id).toBe('r-1')
    expect(body.idempotency_key).toBe('dep-1')
  })

  it('the stored reply-lost of the shared engine keeps Once-Applied: ?1 and names the path without its query', () => {
    const built = replyLost(201, 'maxResponseBytes (8 bytes)', about)
    expect(built.headers).toEqual([
      ['content-type', 'application/problem+json'],
      ['once-applied', '?1'],
    ])
    expect(decode(built.body).instance).toBe('/deposits')
  })
})
