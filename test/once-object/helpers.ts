import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { onceObject, type OnceObjectOptions } from '../../src/index.js'
import { lookupKey } from '../../src/middleware/identity.js'
import type { OnceRecordInfo } from '../../src/durable/once-object-types.js'
import type { Mode, OnceAccount } from './fixture.js'

/** A fresh account (one object), so tests never see each other's records. */
export const newAccount = (): string => `a-${crypto.randomUUID()}`
export const newKey = (): string => `k-${crypto.randomUUID()}`

export const stubOf = (name: string) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(name))

/** The edge: `onceObject()` in front of the account named in the path. */
export function edge(options: OnceObjectOptions = {}) {
  const app = new Hono<{ Bindings: Cloudflare.Env }>()
  app.onError((err, c) => (err instanceof HTTPException ? err.getResponse() : c.text(err.message, 500)))
  app.all('/acct/:name/*', onceObject((c: Context) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(c.req.param('name') ?? '')), options))
  const send = async (account: string, key: string | undefined, o: { body?: unknown; mode?: Mode; route?: 'deposits' | 'calls' | 'sub/calls'; headers?: Record<string, string> } = {}) =>
    app.request(
      `/acct/${account}/${o.route ?? 'deposits'}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(key === undefined ? {} : { 'idempotency-key': `"${key}"` }),
          ...(o.mode ? { 'x-mode': o.mode } : {}),
          ...o.headers,
        },
        body: JSON.stringify(o.body ?? { amount: 100 }),
      },
      env,
    )
  return { app, send }
}

/**
 * The edge with method calls: the deposit runs as `depositCall`, its
 * arguments taken from the request (body, key, `x-mode`, `x-reply-bytes`).
 */
export function callEdge(options: OnceObjectOptions = {}) {
  return edge({
    ...options,
    call: async (c) => ({
      method: 'depositCall',
      args: [(await c.req.json<{ amount: number }>()).amount, c.req.header('idempotency-key') ?? '', c.req.header('x-mode'), Number(c.req.header('x-reply-bytes') ?? 0)],
      status: 201,
    }),
  })
}

/** How many times `key`'s request took effect in `account`. */
export const effects = (account: string, key: string): Promise<number> => stubOf(account).effects(`"${key}"`)

/** The record of `key` (default scope) in `account`. */
export const recordOf = (account: string, key: string): Promise<OnceRecordInfo | null> =>
  stubOf(account).onceRecord(lookupKey('', key)) as Promise<OnceRecordInfo | null>

/** Runs `f` on the account's storage, inside the object. */
export const inside = <R>(account: string, f: (sql: SqlStorage, obj: OnceAccount, state: DurableObjectState) => R): Promise<R> =>
  runInDurableObject(stubOf(account), (obj: OnceAccount, state) => f(state.storage.sql, obj, state))

/** Reads a problem+json body, checking its media type. */
export async function problemOf(res: Response): Promise<Record<string, unknown>> {
  if (res.headers.get('content-type') !== 'application/problem+json') {
    throw new Error(`expected application/problem+json, got ${res.status} ${res.headers.get('content-type')}: ${await res.text()}`)
  }
  return res.json()
}

/** Polls `check` (bounded) until it holds. */
export async function until(check: () => Promise<boolean>, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return
    await scheduler.wait(2)
  }
  throw new Error('the condition never held')
}
