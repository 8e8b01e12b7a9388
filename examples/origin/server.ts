/**
 * A runnable origin server for hono-once: the bank app of `bank.ts` on
 * `@hono/node-server`, `onceReceiver()` and the SQLite store (node:sqlite),
 * with fault injection and statistics over HTTP for tests that can reach it
 * only through its socket (tests running in workerd).
 *
 *   npx tsx examples/origin/server.ts --name eu --port 9001 --latency 20 [--db eu.db] [--secret s3cr3t [--keyid ONCE_SIGNING_SECRET]]
 *
 * The secret may come from the env var ONCE_SIGNING_SECRET instead; its keyid is ONCE_SIGNING_SECRET
 * unless `--keyid` says otherwise (the edge's `proxy({ secret: { env, keyid } })`).
 *
 * Control routes (never signed, never faulted, not counted; for tests and demos only):
 * - `POST /__origin/faults` with a JSON body (see `FaultsInput`), e.g. `{"down":true}`,
 *   `{"latencyMs":500}`, `{"tail":{"p":0.05,"ms":200,"seed":1}}`, `{"failNext":2}`,
 *   `{"dropAfterApply":1}`, `{"hang":true}`, `{"wrongBalance":true}`, `{"reset":true}`;
 *   answers the new fault state.
 * - `GET /__origin/stats`: see {@link OriginStats}.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { isMain } from './is-main.js'
import { getRequestListener, type HttpBindings } from '@hono/node-server'
import { Hono } from 'hono'
import * as z from 'zod/mini'
import { sqliteStore, type AppliedEntry, type SqliteStore } from '../../src/origin/index.js'
import { balances, bankApp, createBankSchema, effectsByRequestId } from './bank.js'
import { Faults, FaultsInput, type FaultState, type FaultsUpdate } from './faults.js'

/** How to start an origin. */
export interface StartOriginOptions {
  /** Reported in stats; never in answers (replicas' answers must be identical). */
  name: string
  /** 0 (default) picks a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** SQLite file, or ':memory:' (default). Restart on the same file to keep the state. */
  dbPath?: string
  /** Added to every request, ms. Default 0. */
  latencyMs?: number
  /** Shared with the edge, by keyid: requests must be signed (`onceReceiver({ secrets })`). */
  secrets?: Record<string, string>
  /** The receiver's wait for running repeats, ms. Default 5000. */
  waitMs?: number
  /** The receiver's wait for an earlier sequence still on its way, ms. Default 250. */
  gapWaitMs?: number
}

/** Per request id, what this origin saw. */
export interface RequestIdStats {
  /** Requests with this id that reached the server (faulted ones included). */
  received: number
  /** Handler runs, committed or rolled back. */
  runs: number
  /** Effects: committed deposits, withdrawals and closings (ledger rows). Exactly once means 1. */
  applied: number
  /** Requests whose client closed the connection before the answer was sent. */
  aborted: number
}

/** What `GET /__origin/stats` answers. */
export interface OriginStats {
  name: string
  /** Non-control requests received, faulted ones included. */
  requests: number
  /** Non-control requests whose client went away before the answer (not counting the ones this server reset). */
  aborted: number
  abortedRequests: { requestId: string | null; method: string; path: string }[]
  byRequestId: Record<string, RequestIdStats>
  /** The receiver's applied slots, in domain and sequence order. */
  applied: AppliedEntry[]
  /** Each domain's next expected sequence. */
  next: Record<string, number>
  balances: Record<string, number>
  faults: FaultState
}

/** A started origin. */
export interface RunningOrigin {
  name: string
  /** e.g. http://127.0.0.1:40123 */
  url: string
  port: number
  db: DatabaseSync
  store: SqliteStore<DatabaseSync>
  /** The same as `GET /__origin/stats`, without the round trip. */
  stats(): Promise<OriginStats>
  /** The same as `POST /__origin/faults`, without the round trip. */
  setFaults(update: FaultsUpdate): Readonly<FaultState>
  /** Resets open connections, stops listening and closes the database. */
  close(): Promise<void>
}

/**
 * Starts the bank origin on a real socket.
 *
 * @param options - name, port, database, latency, secrets
 * @returns the running origin
 * @example
 * const eu = await startOrigin({ name: 'eu', latencyMs: 20 })
 * await fetch(`${eu.url}/accounts/alice/deposits`, {
 *   method: 'POST', headers: { 'once-request-id': 'r-1', 'content-type': 'application/json' }, body: '{"amount":100}',
 * })
 * console.log((await eu.stats()).balances) // { alice: 100 }
 * await eu.close()
 */
export async function startOrigin(options: StartOriginOptions): Promise<RunningOrigin> {
  const { name, port = 0, host = '127.0.0.1', dbPath = ':memory:', latencyMs = 0, secrets, waitMs, gapWaitMs } = options
  const db = new DatabaseSync(dbPath)
  db.exec('PRAGMA busy_timeout = 5000')
  if (dbPath !== ':memory:') db.exec('PRAGMA journal_mode = WAL')
  createBankSchema(db)
  const store = sqliteStore(db)
  const faults = new Faults(latencyMs)
  const counters = { requests: 0, aborted: [] as OriginStats['abortedRequests'], byId: new Map<string, Omit<RequestIdStats, 'applied'>>() }
  const entry = (id: string) => {
    let e = counters.byId.get(id)
    if (!e) counters.byId.set(id, (e = { received: 0, runs: 0, aborted: 0 }))
    return e
  }
  /** Requests this server resets on purpose: not client aborts. */
  const resetByUs = new WeakSet<IncomingMessage>()
  /** Requests to reset once applied (`dropAfterApply`). */
  const dropAfterApply = new WeakSet<IncomingMessage>()
  let closing = false

  const stats = async (): Promise<OriginStats> => {
    const effects = await store.exclusive((conn) => effectsByRequestId(conn))
    const byRequestId: Record<string, RequestIdStats> = {}
    for (const [id, e] of counters.byId) byRequestId[id] = { ...e, applied: effects[id] ?? 0 }
    for (const [id, n] of Object.entries(effects)) byRequestId[id] ??= { received: 0, runs: 0, aborted: 0, applied: n }
    return {
      name,
      requests: counters.requests,
      aborted: counters.aborted.length,
      abortedRequests: counters.aborted,
      byRequestId,
      applied: await store.applied(),
      next: await store.nextSequences(),
      balances: await store.exclusive((conn) => balances(conn)),
      faults: { ...faults.state },
    }
  }

  const app = new Hono<{ Bindings: HttpBindings }>()
  app.get('/__origin/stats', async (c) => c.json(await stats()))
  app.post('/__origin/faults', async (c) => {
    const parsed = z.safeParse(FaultsInput, await c.req.json().catch(() => undefined))
    if (!parsed.success) return c.json({ title: 'Invalid faults', status: 400, detail: z.prettifyError(parsed.error) }, 400)
    return c.json(faults.update(parsed.data))
  })
  app.use('/accounts/*', async (c, next) => {
    await next()
    // Applied and committed by now; the answer never leaves.
    if (dropAfterApply.has(c.env.incoming)) c.env.incoming.socket.resetAndDestroy()
  })
  app.route(
    '/',
    bankApp({
      store,
      secrets,
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(gapWaitMs === undefined ? {} : { gapWaitMs }),
      wrongBalance: () => faults.state.wrongBalance,
      onRun: (id) => {
        if (id !== undefined) entry(id).runs++
      },
    }),
  )
  const listener = getRequestListener(app.fetch)

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url?.startsWith('/__origin/')) return listener(req, res)
    counters.requests++
    const header = req.headers['once-request-id']
    const requestId = typeof header === 'string' ? header : null
    if (requestId !== null) entry(requestId).received++
    res.on('close', () => {
      if (res.writableFinished || resetByUs.has(req)) return
      counters.aborted.push({ requestId, method: req.method ?? '', path: req.url ?? '' })
      if (requestId !== null) entry(requestId).aborted++
    })
    const reset = () => {
      resetByUs.add(req)
      req.socket.resetAndDestroy()
    }
    if (faults.state.down || closing) return reset()
    await faults.untilUnhung()
    const delay = faults.delayMs()
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    if (faults.state.down || closing) return reset()
    if (faults.takeFailure()) {
      res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '0' })
      res.end(JSON.stringify({ title: 'Injected failure', status: 503, detail: 'failNext: this request was not applied.' }))
      return
    }
    if (faults.takeDrop()) {
      resetByUs.add(req)
      dropAfterApply.add(req)
    }
    return listener(req, res)
  }

  const server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const bound = (server.address() as AddressInfo).port
  return {
    name,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    db,
    store,
    stats,
    setFaults: (update) => faults.update(update),
    async close() {
      closing = true
      faults.update({ hang: false })
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      // Let transactions already queued on the connection finish before it closes.
      await store.exclusive((conn) => conn.close())
    },
  }
}


if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      name: { type: 'string', default: 'origin' },
      port: { type: 'string', default: '9001' },
      host: { type: 'string', default: '127.0.0.1' },
      latency: { type: 'string', default: '0' },
      db: { type: 'string', default: ':memory:' },
      secret: { type: 'string' },
      keyid: { type: 'string', default: 'ONCE_SIGNING_SECRET' },
    },
  })
  const secret = values.secret ?? process.env.ONCE_SIGNING_SECRET
  const origin = await startOrigin({
    name: values.name,
    port: Number(values.port),
    host: values.host,
    latencyMs: Number(values.latency),
    dbPath: values.db,
    ...(secret ? { secrets: { [values.keyid]: secret } } : {}),
  })
  console.log(`origin ${origin.name} listening on ${origin.url} (db ${values.db}${secret ? `, signed requests only, keyid ${values.keyid}` : ''})`)
  const stop = () => void origin.close().then(() => process.exit(0))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
