/**
 * Review s31 (diff), D6: since 3e2d255 CommitPoint.finish reads the whole route answer after commit(res)
 * (#answersAsCommitted → captureReply) to compare it with the committed reply, before the client gets anything.
 * A handler that commits an acknowledgement and then streams (progress events, a long export) holds the client
 * until the stream ends; a stream that does not end (server-sent events) never answers, and the stream is never
 * cancelled. Before this session the answer after commit(res) went out as it was.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once } from '../../src/index.js'
import { newKey } from '../helpers.js'

describe('commit(res), then a streamed answer', () => {
  it('the client is answered promptly (the committed reply, or the stream), not after the stream ends', async () => {
    const app = new Hono()
    let pulls = 0
    app.post('/jobs', once({ replayCache: false, maxRunMs: 60_000 }), async (c) => {
      await c.var.once.commit(c.json({ accepted: true }, 200))
      // Progress, one event a second, for as long as the job runs (here: ever).
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          pulls++
          await new Promise((r) => setTimeout(r, pulls === 1 ? 0 : 1000))
          controller.enqueue(new TextEncoder().encode(`data: {"progress":${pulls}}\n\n`))
        },
      })
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })
    })
    const started = Date.now()
    const answered = await Promise.race([
      Promise.resolve(app.request('/jobs', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)).then((r: Response) => `${r.status} ${r.headers.get('content-type')}`),
      new Promise<string>((r) => setTimeout(() => r('no answer'), 4000)),
    ])
    console.log('answer:', answered, 'after', Date.now() - started, 'ms; stream pulled', pulls, 'times')
    expect(answered).not.toBe('no answer')
  })
})
