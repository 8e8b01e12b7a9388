/*
 * (Review s30b.) S4's step-aside for an app reached through app.mount() holds only for an inner receiver without
 * secrets. app.mount('/v1', inner.fetch) strips '/v1' from the URL (Hono's default), and the inner receiver checks
 * the signature (which covers "@path") before it looks for the outer one: every signed request answers 401
 * signature-invalid ?0, which the outer passes on (rolled back): never applied. docs/origin.md says the inner "makes
 * its own checks (its secrets, its limits) and then steps aside".
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'
import { signedHeaders } from './sign.js'

const SECRET = 'a-long-shared-secret-for-tests-0123456789'
const secrets = { ONCE_SIGNING_SECRET: SECRET }

describe('review s30b F3: a signed request into an app.mount()ed app with its own signed receiver', () => {
  it('is applied once (the inner steps aside), not refused 401 by the inner', async () => {
    const store = memoryStore()
    const effects: string[] = []
    const inner = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    inner.use('*', onceReceiver({ store, secrets }))
    inner.post('/deposits', (c) => {
      c.var.receiver.tx.onCommit(() => effects.push(c.var.receiver.requestId))
      return c.json({ ok: true }, 201)
    })
    const app = new Hono()
    app.use('*', onceReceiver({ store, secrets }))
    app.mount('/v1', inner.fetch)
    const url = 'http://origin.test/v1/deposits'
    const body = '{"amount":5}'
    const headers = await signedHeaders({ keyid: 'ONCE_SIGNING_SECRET', secret: SECRET }, url, {
      headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: 'r-1' },
      body,
    })
    const res = await app.request(url, { method: 'POST', headers, body })
    const text = await res.clone().text()
    expect(`${res.status} ${res.headers.get(ONCE_HEADERS.applied)}`, text).toBe("201 ?1")
    expect(effects).toEqual(['r-1'])
  })
})
