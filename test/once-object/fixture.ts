/**
 * The `OnceObject` the contract tests drive: an account whose every effect
 * is a ledger row tagged with its idempotency key, so a test counts how many
 * times a key's request really took effect. A request's `x-mode` header
 * chooses a fault, injected after the effect.
 */
import { Hono } from 'hono'
import { OnceObject, OnceReply, onceRoute } from '../../src/index.js'

/** What a deposit is told to do (header `x-mode`). */
/** What {@link OnceAccount.oddCall} returns. */
export type OddResult = 'status-100' | 'status-600' | 'status-text' | 'header-name' | 'header-value' | 'response' | 'function' | 'no-content' | 'nested' | 'kv'

export type Mode = 'ok' | 'fail' | 'throw' | 'bad-request' | 'abort' | 'abort-now' | 'abort-after' | 'refuse' | 'async' | 'bigint'

export class OnceAccount extends OnceObject {
  readonly #gates = new Map<string, { promise: Promise<void>; open: () => void }>()
  #slowRuns = 0

  app = new Hono()
    .post('/acct/:name/deposits', async (c) => this.#deposit(c.req.raw, (await c.req.json<{ amount: number }>()).amount, c.req.header('x-mode') as Mode))
    // A handler that calls out: it runs under a lease, waiting at its gate (test-controlled) as on a slow fetch.
    .post('/acct/:name/calls', onceRoute({ lease: true }), async (c) => {
      const { amount } = await c.req.json<{ amount: number }>()
      await this.#gates.get(c.req.header('idempotency-key') ?? '')?.promise
      return this.#deposit(c.req.raw, amount, c.req.header('x-mode') as Mode)
    })
    .get('/acct/:name/balance', (c) => c.json({ balance: this.balance() }))
    // A lease route that takes `x-sleep` ms (a slow call out), then writes unless its request was abandoned at maxRunMs.
    .post('/acct/:name/slow', onceRoute({ lease: true }), async (c) => {
      const { amount } = await c.req.json<{ amount: number }>()
      await scheduler.wait(Number(c.req.header('x-sleep') ?? 0))
      this.#slowRuns++
      if (c.req.raw.signal.aborted) return c.json({ abandoned: true }, 503)
      return this.#deposit(c.req.raw, amount, undefined)
    })
    // The same lease route in a sub-app with its own error handler, which Hono wraps when it mounts it.
    .route(
      '/acct/:name/sub',
      new Hono()
        .onError((err, c) => c.text(err.message, 500))
        .post('/calls', onceRoute({ lease: true }), async (c) => {
          const { amount } = await c.req.json<{ amount: number }>()
          await this.#gates.get(c.req.header('idempotency-key') ?? '')?.promise
          return this.#deposit(c.req.raw, amount, c.req.header('x-mode') as Mode)
        }),
    )

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, request_id TEXT, amount INTEGER NOT NULL)')
  }

  async #deposit(req: Request, amount: number, mode: Mode | undefined): Promise<Response> {
    if (mode === 'bad-request') return Response.json({ error: 'refused before any effect' }, { status: 400 })
    const key = req.headers.get('idempotency-key')
    this.ctx.storage.sql.exec('INSERT INTO effects (key, request_id, amount) VALUES (?, ?, ?)', key, req.headers.get('once-request-id'), amount)
    if (mode === 'fail') return Response.json({ error: 'ledger unavailable' }, { status: 503 })
    if (mode === 'throw') throw new Error('ledger exploded')
    // The crash between effect and reply: synchronously, or after a real turn of the event loop (a timer).
    if (mode === 'abort-now') this.ctx.abort('test: crash after the effect')
    if (mode === 'abort') {
      await scheduler.wait(1)
      this.ctx.abort('test: crash after the effect')
    }
    // The crash after the reply left the handler (the transaction closing, or closed).
    if (mode === 'abort-after') setTimeout(() => this.ctx.abort('test: crash after the reply'), 0)
    const headers = new Headers({ 'x-ledger': 'main', 'set-cookie': 'session=abc' })
    const pad = 'p'.repeat(Number(req.headers.get('x-reply-bytes') ?? 0))
    return Response.json({ key, amount, balance: this.balance(), requestId: req.headers.get('once-request-id'), pad }, { status: 201, headers })
  }

  /** Holds the lease route of `key` at its gate until {@link open}. */
  hold(key: string): void {
    let open!: () => void
    const promise = new Promise<void>((r) => (open = r))
    this.#gates.set(key, { promise, open })
  }

  open(key: string): void {
    this.#gates.get(key)?.open()
    this.#gates.delete(key)
  }

  /** The request ids the effects of `key` were written with, oldest first. */
  effectIds(key: string): (string | null)[] {
    return this.ctx.storage.sql.exec<{ id: string | null }>('SELECT request_id AS id FROM effects WHERE key = ? ORDER BY seq', key).toArray().map((r) => r.id)
  }

  /** How many times `key`'s request took effect. */
  effects(key: string): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM effects WHERE key = ?', key).one().n
  }

  balance(): number {
    return this.ctx.storage.sql.exec<{ b: number }>('SELECT coalesce(sum(amount), 0) AS b FROM effects').one().b
  }

  /** Resets the object, as a crash or an eviction would: memory is gone, storage stays. */
  restart(): void {
    this.ctx.abort('test: restart')
  }

  /**
   * The deposit as a method call (onceObject()'s `call` option): the same
   * ledger row and faults as the app's route, run synchronously with its
   * record. `key` is the Idempotency-Key header as sent.
   */
  depositCall(amount: number, key: string, mode: Mode | undefined, replyBytes: number): unknown {
    if (mode === 'bad-request') return new OnceReply(400, { error: 'refused before any effect' })
    this.ctx.storage.sql.exec('INSERT INTO effects (key, request_id, amount) VALUES (?, ?, ?)', key, this.onceRequestId ?? null, amount)
    if (mode === 'fail') return new OnceReply(503, { error: 'ledger unavailable' }, { 'retry-after': '1' })
    if (mode === 'throw') throw new Error('ledger exploded')
    if (mode === 'bigint') return { balance: BigInt(this.balance()) }
    // A final refusal after a write: the write commits with the record, and the refusal is replayed.
    if (mode === 'refuse') return new OnceReply(409, { error: 'limit reached' }, { 'x-ledger': 'main', 'set-cookie': 'session=abc' })
    if (mode === 'async') return Promise.resolve({ late: true })
    if (mode === 'abort-now') this.ctx.abort('test: crash after the effect')
    if (mode === 'abort-after') setTimeout(() => this.ctx.abort('test: crash after the reply'), 0)
    return { key, amount, balance: this.balance(), pad: 'p'.repeat(replyBytes), requestId: this.onceRequestId ?? null }
  }

  /**
   * A method call that writes its ledger row (key `key`, amount 1), then
   * returns what `kind` names: the odd results a method may give.
   */
  oddCall(key: string, kind: OddResult): unknown {
    this.ctx.storage.sql.exec('INSERT INTO effects (key, request_id, amount) VALUES (?, NULL, 1)', key)
    switch (kind) {
      case 'status-100':
        return new OnceReply(100, { ok: true })
      case 'status-600':
        return new OnceReply(600, { ok: true })
      case 'status-text':
        return new OnceReply('201' as unknown as number, { ok: true })
      case 'header-name':
        return new OnceReply(201, { ok: true }, { 'bad name': 'x' })
      case 'header-value':
        return new OnceReply(201, { ok: true }, { 'x-a': 'a\nb' })
      case 'response':
        return Response.json({ ok: true }, { status: 201 })
      case 'function':
        return () => 1
      case 'no-content':
        return new OnceReply(204, undefined, { 'x-a': 'b' })
      case 'nested':
        return this.ctx.storage.transactionSync(() => ({ nested: this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM effects WHERE key = ?', key).one().n }))
      case 'kv':
        void this.ctx.storage.put(`kv:${key}`, 1)
        return { kv: true }
    }
  }

  /** How many runs of the slow lease route got past their wait. */
  slowRuns(): number {
    return this.#slowRuns
  }

  /**
   * A method call that makes a keyed method call of its own object (an inner deposit under `inner`) and tells
   * the request id it saw before and after.
   */
  reenter(inner: string): unknown {
    const before = this.onceRequestId ?? null
    void this.onceCall({
      method: 'depositCall',
      args: [1, inner, undefined, 0],
      status: 201,
      identity: { key: inner, lookup: `inner:${inner}`, fingerprint: 'inner' },
      policy: { ttlMs: 60_000, waitMs: 0, maxRunMs: 1000, maxReplyBytes: 1 << 20 },
    })
    return { before, after: this.onceRequestId ?? null }
  }

  /** A plain RPC deposit, no idempotency: the floor the bench compares with. */
  deposit(key: string, amount: number): number {
    this.ctx.storage.sql.exec('INSERT INTO effects (key, request_id, amount) VALUES (?, NULL, ?)', key, amount)
    return this.balance()
  }
}
