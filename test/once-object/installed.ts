/**
 * Helpers for tests that bring their own app or methods: an edge in front of OnceAccount objects whose Hono app a test replaces (inside the
 * object, for that instance only), so each repro brings its own routes without touching the shared fixture.
 */
import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { onceObject, type OnceObjectOptions } from '../../src/index.js'
import { stubOf } from './helpers.js'
import type { OnceAccount } from '../once-object/fixture.js'

export { newAccount, newKey, stubOf, until } from './helpers.js'

/** Replaces the object's app (this instance only) with what `make` builds; `make` runs inside the object. */
export function install(account: string, make: (obj: OnceAccount, state: DurableObjectState) => Hono): Promise<void> {
  return runInDurableObject(stubOf(account), (obj: OnceAccount, state) => {
    ;(obj as unknown as { app: Hono }).app = make(obj, state)
  })
}

/** Adds methods to the object (this instance only), as if its class declared them. */
export function addMethods(account: string, make: (obj: OnceAccount, state: DurableObjectState) => Record<string, (...args: never[]) => unknown>): Promise<void> {
  return runInDurableObject(stubOf(account), (obj: OnceAccount, state) => {
    const proto = Object.create(Object.getPrototypeOf(obj) as object) as Record<string, unknown>
    Object.assign(proto, make(obj, state))
    Object.setPrototypeOf(obj, proto)
  })
}

/** A table `installed_effects` (key, note) the replaced apps write their effects to, one row per effect. */
export const ensureTable = (sql: SqlStorage) => sql.exec('CREATE TABLE IF NOT EXISTS installed_effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, note TEXT)')
export const write = (sql: SqlStorage, key: string | null | undefined, note = '') => {
  ensureTable(sql)
  sql.exec('INSERT INTO installed_effects (key, note) VALUES (?, ?)', key ?? null, note)
}
export const rows = (account: string, key: string): Promise<number> =>
  runInDurableObject(stubOf(account), (_obj: OnceAccount, state) => {
    ensureTable(state.storage.sql)
    return state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM installed_effects WHERE key = ?', key).one().n
  })

/** The edge: onceObject() in front of the account named in the path, with outer middleware `use` first. */
export function edge(options: OnceObjectOptions = {}, use: MiddlewareHandler[] = []) {
  const app = new Hono<{ Bindings: Cloudflare.Env }>()
  app.onError((err, c) => (err instanceof HTTPException ? err.getResponse() : c.text(err.message, 500)))
  for (const m of use) app.use(m)
  app.all('/acct/:name/*', onceObject((c: Context) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(c.req.param('name') ?? '')), options))
  const send = (account: string, path: string, key: string | undefined, init: { body?: string; headers?: Record<string, string>; method?: string } = {}) =>
    app.request(
      `/acct/${account}/${path}`,
      {
        method: init.method ?? 'POST',
        headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': `"${key}"` }), ...init.headers },
        ...(init.method === 'GET' || init.method === 'HEAD' ? {} : { body: init.body ?? '{"amount":1}' }),
      },
      env,
    )
  return { app, send }
}

