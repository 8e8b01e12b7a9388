import { DurableObject } from 'cloudflare:workers'
import { Hono } from 'hono'
import { once, StableArea } from '../src/index.js'

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

type Bindings = { ONCE: DurableObjectNamespace<StableArea>; FLOOR: DurableObjectNamespace<Floor> }

/** The same small handler behind each variant. */
const handler = (c: { json: (v: unknown, s: 201) => Response }) => c.json({ ok: true, at: 'bench' }, 201)

const app = new Hono<{ Bindings: Bindings }>()
app.get('/', (c) => c.text('bench'))
app.post('/plain', (c) => handler(c))
app.post('/floor', async (c) => {
  const key = c.req.header('idempotency-key') ?? 'k'
  const stub = c.env.FLOOR.get(c.env.FLOOR.idFromName('floor'))
  await stub.write(key, 'admit')
  const res = handler(c)
  await stub.write(key, 'commit')
  return res
})
app.post('/once', once(), (c) => handler(c))
app.post('/once-nocache', once({ replayCache: false }), (c) => handler(c))

export { StableArea }
export default app
