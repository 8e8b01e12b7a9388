import { env } from 'cloudflare:workers'
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test'
import { Hono, type MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { once, type OnceOptions } from '../src/index.js'
import type { StableArea } from '../src/durable/stable-area.js'
import type { RecordInfo, StableAreaApi } from '../src/durable/types.js'
import { fingerprint } from '../src/middleware/fingerprint.js'
import { lookupKey, shardName } from '../src/middleware/identity.js'

/** A fresh key, so tests never see each other's records. */
export const newKey = (): string => `k-${crypto.randomUUID()}`

/** What the counting handler is told to do on a request (by its `x-mode` header). */
export type Mode = 'ok' | 'fail' | 'throw' | 'bad-request'

/**
 * A Hono app whose `POST /deposits` applies a non-idempotent effect (a
 * counter per key) behind `once()`. `effects` is the assertion that matters:
 * how many times each key's deposit really happened.
 *
 * With `context`, each request runs with an execution context, as on Workers: a final reply is then answered
 * before its commit lands (`answerFirst`), and `settled()` waits for what the requests left in the background.
 */
export function bank(options: OnceOptions = {}, { context = false }: { context?: boolean } = {}) {
  const contexts = new Set<ExecutionContext>()
  const contextFor = () => {
    if (!context) return undefined
    const ctx = createExecutionContext()
    contexts.add(ctx)
    return ctx
  }
  /** Waits for the background work (commits after answers) of every request sent so far. */
  const settled = async () => {
    const all = [...contexts]
    contexts.clear()
    await Promise.all(all.map((ctx) => waitOnExecutionContext(ctx)))
  }
  const effects = new Map<string, number>()
  const gates = new Map<string, Promise<void>>()
  const app = new Hono()
  // Thrown errors are expected here; answer 500 without logging each one.
  app.onError((err, c) => (err instanceof HTTPException ? err.getResponse() : c.text(err.message, 500)))
  app.post('/deposits', once(options), async (c) => {
    // Without a key (required: false) once() passes through and sets nothing.
    const key = c.get('once')?.key ?? '(no key)'
    await gates.get(key)
    const mode = (c.req.header('x-mode') ?? 'ok') as Mode
    if (mode === 'bad-request') return c.json({ error: 'amount missing' }, 400)
    if (mode === 'fail') return c.json({ error: 'ledger unavailable' }, 503)
    if (mode === 'throw') throw new Error('ledger exploded')
    const n = (effects.get(key) ?? 0) + 1
    effects.set(key, n)
    const body = await c.req.text()
    return c.json({ key, applied: n, body, requestId: c.get('once')?.requestId }, 201, {
      'x-ledger': 'main',
      'set-cookie': 'session=abc',
    })
  })
  /** Holds the handler of `key` until the returned function is called. */
  const hold = (key: string): (() => void) => {
    let open!: () => void
    gates.set(key, new Promise<void>((r) => (open = r)))
    return () => {
      gates.delete(key)
      open()
    }
  }
  const post = (key: string | undefined, body: unknown = { amount: 100 }, headers: Record<string, string> = {}) =>
    app.request(
      '/deposits',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': `"${key}"` }), ...headers },
        body: JSON.stringify(body),
      },
      env,
      contextFor(),
    )
  return { app, effects, hold, post, settled }
}

/** The stub of the object that owns `key` (default scope, no Authorization, one shard). */
export async function stubFor(key: string, scope = '', shards = 1): Promise<DurableObjectStub<StableArea>> {
  return env.ONCE.get(env.ONCE.idFromName(await shardName(lookupKey(scope, key), shards)))
}

/**
 * Plays a Worker that admitted `key` and then died: it takes the lease and
 * never commits, releases or renews.
 */
export async function crashedWorker(key: string, body: unknown = { amount: 100 }, leaseMs = 30_000) {
  const print = await fingerprint({
    method: 'POST',
    url: 'http://localhost/deposits',
    headers: new Headers(),
    body: new TextEncoder().encode(JSON.stringify(body)),
  })
  const stub = (await stubFor(key)) as unknown as StableAreaApi
  return stub.admit({ lookup: lookupKey('', key), fingerprint: print, leaseMs, ttlMs: 86_400_000, waitMs: 0 })
}

/** Polls (bounded) until `check` holds for the record of `key`, as the object reports it. */
export async function until(key: string, check: (info: RecordInfo | null) => boolean, tries = 500): Promise<RecordInfo | null> {
  const stub = (await stubFor(key)) as unknown as StableAreaApi
  for (let i = 0; i < tries; i++) {
    const info = await stub.inspect(lookupKey('', key))
    if (check(info)) return info
    await scheduler.wait(2)
  }
  throw new Error(`record ${key} never reached the expected state`)
}

/** Moves every lease of the object that owns `key` into the past, as if `leaseMs` had gone by. */
export async function expireLeases(key: string): Promise<void> {
  await runInDurableObject(await stubFor(key), (_obj: StableArea, state) => {
    state.storage.sql.exec('UPDATE records SET lease_until = ? WHERE lease_until IS NOT NULL', Date.now() - 1)
  })
}

/** Moves every record of the object that owns `key` past its expiry, as if the TTL had gone by. */
export async function expireRecords(key: string): Promise<void> {
  await runInDurableObject(await stubFor(key), (_obj: StableArea, state) => {
    state.storage.sql.exec('UPDATE records SET expires_at = ?', Date.now() - 1)
  })
}

/** A record's row as stored, for looking inside the object. */
export async function recordOf(key: string): Promise<Record<string, SqlStorageValue> | undefined> {
  return runInDurableObject(await stubFor(key), (_obj: StableArea, state) =>
    state.storage.sql.exec('SELECT * FROM records WHERE lookup = ?', lookupKey('', key)).toArray()[0],
  )
}

/** Reads a problem+json body, checking its media type. */
export async function problemOf(res: Response): Promise<Record<string, unknown>> {
  if (res.headers.get('content-type') !== 'application/problem+json') {
    throw new Error(`expected application/problem+json, got ${res.headers.get('content-type')}: ${await res.text()}`)
  }
  return res.json()
}

/** A middleware that reads the body through Hono as `read` before the next one (a validator does that), as a test's "before once()". */
export const readsBodyFirst =
  (read: 'json' | 'text' | 'arrayBuffer' | 'formData' | 'parseBody'): MiddlewareHandler =>
  async (c, next) => {
    await (c.req[read] as () => Promise<unknown>).call(c.req)
    await next()
  }

/**
 * The stable area as a Worker that dies after its admit sees it: renewals never answered (its lease runs out, as a
 * dead Worker's does), everything else real. Pass it as once()'s `namespace`, park the handler, then expire the
 * lease and run the alarm.
 */
export function diesAfterAdmit(): typeof env.ONCE {
  return {
    idFromName: (name: string) => env.ONCE.idFromName(name),
    get: (id: DurableObjectId) =>
      new Proxy(env.ONCE.get(id) as unknown as StableAreaApi, {
        get: (target, prop) => (prop === 'renew' ? () => new Promise(() => {}) : Reflect.get(target, prop)),
      }),
  } as unknown as typeof env.ONCE
}

/**
 * The relay rows of `key` while its request is in flight (an origin holding it): polled until one is stored, up to
 * a second. What the alarm could resend should the Worker die now.
 */
export async function relayRowsWhileInFlight(key: string, scope = ''): Promise<unknown[]> {
  const rows = async () =>
    runInDurableObject(await stubFor(key, scope), (_o, state) => state.storage.sql.exec('SELECT state FROM relays WHERE lookup = ?', lookupKey(scope, key)).toArray())
  let found: unknown[] = []
  for (let i = 0; i < 100 && found.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10))
    found = await rows()
  }
  return found
}

/** `bytes` as a body sent chunked (a stream, no Content-Length), `chunk` bytes at a time; send it with `duplex: 'half'`. */
export function chunked(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close()
      controller.enqueue(bytes.slice(at, (at += chunk)))
    },
  })
}
