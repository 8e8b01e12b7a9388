/**
 * The Worker `npm run bench` measures (bench/run.ts starts it under `wrangler dev`).
 *
 * - `POST /plain`, `/floor`, `/once`, `/once-nocache`, `/once-commit-first`: the
 *   same small handler bare, behind two bare durable writes (the floor), and
 *   behind `once()` (answering first, its default; without its reply cache; and
 *   with `answerFirst: false`, which commits before it answers, as the floor).
 * - `POST /rpc/:id/deposits`, `/once-rpc/…`, `/obj/…`, `/obj-nocache/…`
 *   (section 7): a deposit into a `BenchAccount` object, as a plain RPC, as
 *   `once()` around the RPC, and through `onceObject()`.
 * - `/accounts/*` with a `Bench-Variant` header: the proxy sections, against
 *   the real Node origins bench/run.ts started. Their URLs arrive at run time
 *   as the var `BENCH_ORIGINS` (JSON, origin name → URL), so each variant's
 *   app is built on its first request and kept (a proxy's options hold its
 *   origins' health). A variant whose options are refused answers 500 with
 *   the reason, so the harness can skip a section whose feature is missing.
 *   Every variant goes through the same header lookup, so it costs them alike.
 */
import { DurableObject } from 'cloudflare:workers'
import { type Context, Hono } from 'hono'
import { once, OnceObject, onceObject, type OnceOptions, proxy, type ProxyOptions, StableArea } from '../src/index.js'
import { contentDigest } from '../src/shared/content-digest.js'
import { signRequest } from '../src/shared/signature.js'

/** The floor any durable idempotency scheme pays: one bare durable write per round trip. */
export class Floor extends DurableObject {
  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS w (k TEXT PRIMARY KEY, v TEXT)')
  }
  write(k: string, v: string): void {
    this.ctx.storage.sql.exec('INSERT INTO w (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v', k, v)
  }
}

/**
 * Section 7 (issue 19): an account whose state is the effect. `deposit` is
 * the plain RPC floor (no idempotency, arguments already parsed); the app's
 * route does the same SQL behind `onceObject()`, its record in the same
 * transaction.
 */
export class BenchAccount extends OnceObject {
  // The edge's paths reach it as they are: /obj/… and /obj-nocache/…
  app = new Hono().post('/:via/:id/deposits', async (c) => {
    const { amount } = await c.req.json<{ amount: number }>()
    return c.json({ balance: this.deposit(amount) }, 201)
  })

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, cents INTEGER NOT NULL, balance INTEGER NOT NULL)')
  }

  /** Adds `cents` with a ledger row; returns the new balance. */
  deposit(cents: number): number {
    const last = this.ctx.storage.sql.exec<{ b: number }>('SELECT balance AS b FROM ledger ORDER BY seq DESC LIMIT 1').toArray()[0]?.b ?? 0
    this.ctx.storage.sql.exec('INSERT INTO ledger (cents, balance) VALUES (?, ?)', cents, last + cents)
    return last + cents
  }
}

type Bindings = {
  ONCE: DurableObjectNamespace<StableArea>
  FLOOR: DurableObjectNamespace<Floor>
  ACCOUNT: DurableObjectNamespace<BenchAccount>
  /** JSON: origin name → URL (set by bench/run.ts with `--var`). */
  BENCH_ORIGINS?: string
  /** Signs every request to the origins, the by-hand baseline's too (set by bench/run.ts with `--var`). */
  ONCE_SIGNING_SECRET?: string
}
type Env = { Bindings: Bindings }

/** The same small handler behind each variant. */
const handler = (c: { json: (v: unknown, s: 201) => Response }) => c.json({ ok: true, at: 'bench' }, 201)

const floorStub = (env: Bindings) => env.FLOOR.get(env.FLOOR.idFromName('floor'))

const app = new Hono<Env>()
app.get('/', (c) => c.text('bench'))
app.post('/plain', (c) => handler(c))
app.post('/floor', async (c) => {
  const key = c.req.header('idempotency-key') ?? 'k'
  const stub = floorStub(c.env)
  await stub.write(key, 'admit')
  const res = handler(c)
  await stub.write(key, 'commit')
  return res
})
app.post('/once', once(), (c) => handler(c))
app.post('/once-nocache', once({ replayCache: false }), (c) => handler(c))
app.post('/once-commit-first', once({ answerFirst: false }), (c) => handler(c))

// ---- section 7: state in a Durable Object ------------------------------------

const account = (c: { env: Bindings; req: { param(name: 'id'): string | undefined } }) => c.env.ACCOUNT.get(c.env.ACCOUNT.idFromName(c.req.param('id') ?? ''))
/** The floor: a plain RPC method doing the same SQL, arguments parsed at the edge. */
app.post('/rpc/:id/deposits', async (c) => {
  const { amount } = await c.req.json<{ amount: number }>()
  return c.json({ balance: await account(c).deposit(amount) }, 201)
})
/** Today's way: once() around a handler that calls the object (admit, the call, commit). */
app.post('/once-rpc/:id/deposits', once(), async (c) => {
  const { amount } = await c.req.json<{ amount: number }>()
  return c.json({ balance: await account(c).deposit(amount) }, 201)
})
app.post('/obj/:id/deposits', onceObject((c: Context<Env>) => account(c)))
app.post('/obj-nocache/:id/deposits', onceObject((c: Context<Env>) => account(c), { replayCache: false }))
/** The method call: the same deposit, its argument parsed at the edge, run with its record in one transactionSync(). */
app.post(
  '/call/:id/deposits',
  onceObject((c: Context<Env>) => account(c), {
    call: async (c) => ({ method: 'deposit', args: [(await c.req.json<{ amount: number }>()).amount], status: 201 }),
  }),
)

// ---- proxy sections --------------------------------------------------------

/** Built variant apps (or why one could not be built), by variant name. */
const variants = new Map<string, Hono<Env> | Error>()

function originsOf(env: Bindings): Record<string, string> {
  return JSON.parse(env.BENCH_ORIGINS ?? '{}') as Record<string, string>
}

function url(env: Bindings, name: string): string {
  const u = originsOf(env)[name]
  if (!u) throw new Error(`origin ${name} is not in BENCH_ORIGINS`)
  return u
}

/** The origin call a Worker would make by hand: the client's request with a request id, to one origin, signed as DESIGN §6 says. */
async function direct(req: Request, origin: string, env: Bindings): Promise<Response> {
  const incoming = new URL(req.url)
  const headers = new Headers()
  for (const name of ['content-type', 'idempotency-key']) {
    const v = req.headers.get(name)
    if (v !== null) headers.set(name, v)
  }
  headers.set('once-request-id', crypto.randomUUID())
  const body = req.method === 'GET' || req.method === 'HEAD' ? new Uint8Array() : new Uint8Array(await req.arrayBuffer())
  const url = origin + incoming.pathname + incoming.search
  headers.set('content-digest', await contentDigest(body))
  if (env.ONCE_SIGNING_SECRET) {
    const signed = signRequest({ keyid: 'ONCE_SIGNING_SECRET', secret: env.ONCE_SIGNING_SECRET }, { method: req.method, url, headers })
    headers.set('signature-input', signed.signatureInput)
    headers.set('signature', signed.signature)
  }
  const res = await fetch(url, { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body })
  return new Response(res.body, res)
}

/**
 * `domain` is the option the lead is adding to once() for ordered domains;
 * passed untyped so this file compiles before and after it lands (until
 * then once() refuses it and the replicate section is skipped).
 */
const ordered = (): OnceOptions => ({ domain: (c: Context) => `bench-${c.req.path.split('/')[2] ?? ''}` }) as Record<string, unknown> as OnceOptions

function build(name: string, env: Bindings): Hono<Env> {
  const v = new Hono<Env>()
  const [kind, arg] = name.split(':') as [string, string | undefined]
  const group = (origins: string[], extra: Omit<ProxyOptions, 'origins'>): ProxyOptions => ({
    origins: origins.map((o) => ({ name: o, url: url(env, o) })),
    ...(env.ONCE_SIGNING_SECRET ? { secret: { env: 'ONCE_SIGNING_SECRET' } } : {}),
    ...extra,
  })
  switch (kind) {
    // Section 2: once() + proxy() to one healthy origin, against the same call made by hand.
    case 'direct':
      v.all('*', (c) => direct(c.req.raw, url(env, 'p'), env))
      break
    case 'direct-floor':
      v.all('*', async (c) => {
        const key = c.req.header('idempotency-key') ?? 'k'
        const stub = floorStub(c.env)
        await stub.write(key, 'admit')
        const res = await direct(c.req.raw, url(env, 'p'), env)
        const body = await res.arrayBuffer() // read whole, as proxy() does before the commit
        await stub.write(key, 'commit')
        return new Response(body, res)
      })
      break
    case 'once-direct':
      // Diagnostic: once() around the by-hand call, no proxy() (no relay record, no Server-Timing).
      v.post('/accounts/:id/deposits', once(), (c) => direct(c.req.raw, url(env, 'p'), env))
      break
    case 'proxy-bare':
      // Diagnostic: proxy() without once() (no admit, no relay record, no commit).
      v.post('/accounts/:id/deposits', proxy(group(['p'], { strategy: 'failover' })))
      break
    case 'proxy':
      v.post('/accounts/:id/deposits', once(), proxy(group(['p'], { strategy: 'failover' })))
      break
    // Section 3: reads, single origin (failover = no hedging) or hedged over two.
    case 'single':
      v.get('/accounts/:id', proxy(group([arg ?? ''], { strategy: 'failover' })))
      break
    case 'hedge': {
      // hedge:<tail origin>,<clean origin>,<auto|ms>
      const [a = '', b = '', after = 'auto'] = (arg ?? '').split(',')
      v.get('/accounts/:id', proxy(group([a, b], { strategy: 'hedge', hedgeAfterMs: after === 'auto' ? 'auto' : Number(after) })))
      break
    }
    // Section 4: ordered writes, single-origin failover against replicate with each ackQuorum.
    case 'write-single':
      // An ordering domain needs the replicate strategy, so the single-origin write is unordered: the plain failover write.
      v.post('/accounts/:id/deposits', once(), proxy(group([arg ?? ''], { strategy: 'failover' })))
      break
    case 'replicate': {
      // replicate:<1|majority|all>,<origin>,<origin>,…
      const [q = '1', ...origins] = (arg ?? '').split(',')
      const ackQuorum = q === '1' ? 1 : (q as 'majority' | 'all')
      v.post('/accounts/:id/deposits', once(ordered()), proxy(group(origins, { strategy: 'replicate', ackQuorum })))
      break
    }
    default:
      throw new Error(`unknown bench variant ${JSON.stringify(name)}`)
  }
  return v
}

app.all('/accounts/*', (c) => {
  const name = c.req.header('bench-variant') ?? ''
  let v = variants.get(name)
  if (!v) {
    try {
      v = build(name, c.env)
    } catch (err) {
      v = err instanceof Error ? err : new Error(String(err))
    }
    variants.set(name, v)
  }
  if (v instanceof Error) return c.text(`bench variant ${name}: ${v.message}`, 500)
  return v.fetch(c.req.raw, c.env, c.executionCtx)
})

export { StableArea }
export default app
