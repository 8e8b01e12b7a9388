/**
 * The peer for section 6: `@node-idempotency/core` with its memory adapter,
 * in a Hono app on `@hono/node-server`, beside the same plain handler.
 * Run in its own process by bench/sections/peer.ts (so the client's event
 * loop is not the server's), it prints `{"port":n}` once listening.
 *
 * The glue below is what the library leaves to each framework (its NestJS
 * interceptor does the same): `onRequest` before the handler (a stored
 * response means replay; an error means in progress or key reuse), the
 * handler, then `onResponse` with the body and status.
 */
import { serve } from '@hono/node-server'
import { Idempotency, IdempotencyError, IdempotencyErrorCodes } from '@node-idempotency/core'
import { MemoryStorageAdapter } from '@node-idempotency/storage-adapter-memory'
import { Hono, type MiddlewareHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** The same small handler as bench/worker.ts. */
const handler = (c: { json: (v: unknown, s: 201) => Response }) => c.json({ ok: true, at: 'bench' }, 201)

const idempotency = new Idempotency(new MemoryStorageAdapter(), { cacheTTLMS: 24 * 3600 * 1000 })

const nodeIdempotency: MiddlewareHandler = async (c, next) => {
  const text = await c.req.text()
  const request = {
    headers: c.req.header() as Record<string, unknown>,
    path: c.req.path,
    method: c.req.method,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  }
  let stored: { body?: unknown; additional?: Record<string, unknown> } | undefined
  try {
    stored = await idempotency.onRequest(request)
  } catch (err) {
    if (!(err instanceof IdempotencyError)) throw err
    const status = err.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS ? 409 : err.code === IdempotencyErrorCodes.IDEMPOTENCY_FINGERPRINT_MISSMATCH ? 422 : 400
    return c.json({ title: err.message, status }, status)
  }
  if (stored) {
    c.header('idempotent-replayed', 'true')
    return c.json(stored.body, (stored.additional?.status as ContentfulStatusCode | undefined) ?? 200)
  }
  await next()
  const body: unknown = await c.res.clone().json()
  await idempotency.onResponse(request, { body, additional: { status: c.res.status } })
}

const app = new Hono()
app.post('/plain', (c) => handler(c))
app.post('/peer', nodeIdempotency, (c) => handler(c))

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`${JSON.stringify({ port: info.port })}\n`)
})
const stop = () => server.close(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
