/**
 * An OnceObject subclass deployed with `new_classes` (key-value storage) instead of `new_sqlite_classes`, the usual
 * slip (review s29d R9): every call answers 500 `misconfigured` naming the cause, not a 503 to retry for ever.
 * The ONCE_ACCOUNT_KV binding (test/wrangler.toml, test/worker.ts) is such a class.
 */
import { env } from 'cloudflare:workers'
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it } from 'vitest'
import { onceObject } from '../../src/index.js'

describe('an OnceObject without SQLite storage (review s29d R9)', () => {
  it('answers 500 misconfigured, not a 503 to retry', async () => {
    const ns = (env as unknown as { ONCE_ACCOUNT_KV: DurableObjectNamespace }).ONCE_ACCOUNT_KV
    const app = new Hono()
    app.onError((err, c) => (err instanceof HTTPException ? err.getResponse() : c.text(err.message, 500)))
    app.post('/acct/:name/*', onceObject((c: Context) => ns.get(ns.idFromName(c.req.param('name') ?? '')) as never))
    const res = await app.request('/acct/x/deposits', { method: 'POST', headers: { 'idempotency-key': '"k1"', 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    const body = (await res.json()) as { type?: string; detail?: string }
    expect({ status: res.status, type: body.type }, body.detail).toEqual({ status: 500, type: 'https://hono-once.dev/problems/misconfigured' })
  })
})
