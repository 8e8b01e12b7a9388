import type { Context, MiddlewareHandler, Next } from 'hono'
import { admit } from './admit.js'
import { answerWith, callerHeaders } from './caller-headers.js'
import { type OnceConfig, resolveConfig } from './config.js'
import { identify } from './identify.js'
import { readKey } from './key.js'
import type { OnceOptions } from './options.js'
import { run } from './run.js'
import { setCallerScope } from '../origin-adapter/forward.js'
import type { OnceVariables } from './types.js'


/**
 * Exactly-once middleware: each state-changing request with an
 * `Idempotency-Key` runs its handler once per key and tenant scope; every
 * duplicate gets the stored reply byte for byte, with
 * `Idempotent-Replayed: true`. The record lives in the `StableArea` Durable
 * Object, so it survives Worker crashes and object restarts; a Worker that
 * dies mid-request loses its lease, and the next retry runs the handler.
 *
 * The life of a keyed request (DESIGN §3): {@link identify} (key, scope,
 * fingerprint), {@link admit} (one RPC), {@link run} (handler under a
 * renewed, bounded lease, then the commit).
 *
 * Errors are RFC 9457 problems: 400 (key missing or malformed), 413 (body
 * too large), 422 (key reused for another request), 409 (still running),
 * 503 (stable area unreachable), 504 (handler past `maxRunMs`), 500
 * (misconfigured).
 *
 * @param options - see {@link OnceOptions}; validated here, a bad one throws
 * @returns the middleware
 * @example
 * import { Hono } from 'hono'
 * import { once, StableArea } from 'hono-once'
 *
 * const app = new Hono<{ Bindings: { ONCE: DurableObjectNamespace<StableArea> } }>()
 * app.post('/accounts/:id/deposits', once(), async (c) => {
 *   const { amount } = await c.req.json<{ amount: number }>()
 *   return c.json({ balance: await deposit(c.req.param('id'), amount) }, 201)
 * })
 * export { StableArea }
 * export default app
 */
export const once = (options: OnceOptions = {}): MiddlewareHandler<{ Variables: OnceVariables }> => {
  const config = resolveConfig(options)
  const middleware: MiddlewareHandler<{ Variables: OnceVariables }> = async function once(c, next) {
    // A second once() on the same request (app.use plus a route's own) steps aside: the first one owns it.
    if (!config.gated.has(c.req.method) || c.get('once') !== undefined) return next()
    const key = readKey(c, config)
    if (key === undefined) {
      // A keyless request still says who made it to the origins proxy() forwards it to (Once-Principal), as a keyed
      // one does; asked only then, once its body is read (a scope option may read it too).
      setCallerScope(c, async () => config.callerScope(c))
      return next()
    }
    return handleKeyed(c, next, config, key, middleware)
  }
  return middleware
}

async function handleKeyed(c: Context, next: Next, config: OnceConfig, key: string, self: object): Promise<Response | undefined> {
  const id = await identify(c, config, key)
  if (id instanceof Response) return answerWith(c, id, callerHeaders(c))
  const admitted = await admit(c, config, id, self)
  if (admitted instanceof Response) return answerWith(c, admitted, callerHeaders(c))
  return run(c, next, config, id, admitted)
}
