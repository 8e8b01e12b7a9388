/**
 * `hono-once/testing`: helpers for testing your own app's `once()`, `proxy()` and `onceObject()` routes in workerd with
 * `@cloudflare/vitest-plugin` (Miniflare). Dev-time only: it imports `cloudflare:test`, so it runs inside the
 * vitest pool and never in a deployed Worker; nothing in `hono-once`, `hono-once/gateway` or the other entries
 * imports it. Guide: docs/testing.md, "Testing your app".
 *
 * It is a top-level entry (like `gateway.ts`): it looks inside the stable area (a key's record, its lease, its
 * stored reply; the alarm; a Worker that died mid-handler) with `once()`'s own key rules, and re-exports the
 * in-process origin of `testing/origins.ts`.
 *
 * @example
 * import { crashedWorker, endLease, keyRecord } from 'hono-once/testing'
 * await crashedWorker(env.ONCE, 'dep-1', request) // a Worker admitted the key and died
 * await endLease(env.ONCE, 'dep-1') // its lease ran out
 * @module
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import type { RecordRow } from './durable/records.js'
import type { StableArea } from './durable/stable-area.js'
import type { AdmitResult, StableAreaApi } from './durable/types.js'
import type { OnceRecordInfo } from './durable/once-object-types.js'
import { fingerprint, type FingerprintOptions } from './middleware/fingerprint.js'
import { lookupKey, shardName } from './middleware/identity.js'
import { forgetEverywhere } from './middleware/reply-cache.js'

export { testOrigin, type OriginFaults, type OriginHandler, type OriginFetcher, type TestOrigin } from './testing/origins.js'

/** Where a key lives: the same `scope` and `shards` the app's `once()` uses. */
export interface KeyAddress {
  /**
   * The key's scope as `once()` computed it. Default `''`: a request with no `Authorization` header and no
   * JWT (or `scope: 'none'`). For other callers, read it from the handler: `c.var.once.scope`.
   */
  scope?: string
  /** `once({ shards })`. Default 1. */
  shards?: number
}

/** A stored reply, as a duplicate gets it back. */
export interface StoredReply {
  status: number
  headers: [string, string][]
  body: Uint8Array
  /** The body as UTF-8 text (for JSON and text replies). */
  text: string
}

/** A key's record in the stable area. */
export interface KeyRecord {
  /** `in_flight`: admitted and running (or its Worker died); `committed`: the reply is stored; `released`: free to run again. */
  state: 'in_flight' | 'committed' | 'released'
  /** The request id origins see for this key (`Once-Request-Id`); the same on every attempt. */
  requestId: string
  /** Attempts admitted so far (a retry after a dead Worker's lease is attempt 2). */
  attempt: number
  /** Until when the running attempt owns the key (ms since epoch); null once committed or released. */
  leaseUntil: number | null
  /** When the record and its reply are dropped (ms since epoch). */
  expiresAt: number
  /** Committed at `c.var.once.commit()`, the final reply not yet stored. */
  provisional: boolean
  /** The stored reply; null while in flight, released, or provisional. */
  reply: StoredReply | null
}

/**
 * The stub of the StableArea object that holds `key`.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key, without the quotes of the header
 * @param address - scope and shards, as the app's `once()` has them
 * @returns the object's stub
 * @example
 * const stub = await stableAreaOf(env.ONCE, 'dep-1')
 */
export async function stableAreaOf(namespace: DurableObjectNamespace<StableArea>, key: string, address: KeyAddress = {}): Promise<DurableObjectStub<StableArea>> {
  const lookup = lookupKey(address.scope ?? '', key)
  return namespace.get(namespace.idFromName(await shardName(lookup, address.shards ?? 1)))
}

/**
 * Reads a key's record: state, lease, attempts and the stored reply.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param address - scope and shards
 * @returns the record, or null when the object has none for the key (never seen, or expired and deleted)
 * @example
 * const record = await keyRecord(env.ONCE, 'dep-1')
 * expect(record?.state).toBe('committed')
 * expect(JSON.parse(record!.reply!.text)).toMatchObject({ balance: 100 })
 */
export async function keyRecord(namespace: DurableObjectNamespace<StableArea>, key: string, address: KeyAddress = {}): Promise<KeyRecord | null> {
  const lookup = lookupKey(address.scope ?? '', key)
  return runInDurableObject(await stableAreaOf(namespace, key, address), (_object: StableArea, state) => {
    const sql = state.storage.sql
    const row = sql.exec<RecordRow>('SELECT * FROM records WHERE lookup = ?', lookup).toArray()[0]
    if (!row) return null
    let reply: StoredReply | null = null
    if (row.state === 'committed' && row.status !== null) {
      const parts =
        row.chunks > 0
          ? sql.exec<{ data: ArrayBuffer }>('SELECT data FROM reply_chunks WHERE lookup = ? ORDER BY idx', lookup).toArray().map((r) => new Uint8Array(r.data))
          : [new Uint8Array(row.body ?? new ArrayBuffer(0))]
      const body = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
      let at = 0
      for (const part of parts) {
        body.set(part, at)
        at += part.byteLength
      }
      reply = { status: row.status, headers: JSON.parse(row.headers ?? '[]') as [string, string][], body, text: new TextDecoder().decode(body) }
    }
    return {
      state: row.state,
      requestId: row.request_id,
      attempt: row.attempt,
      leaseUntil: row.lease_until,
      expiresAt: row.expires_at,
      provisional: row.provisional === 1,
      reply,
    }
  })
}

/**
 * Waits until `key` is no longer running under a live lease, and reads its record then: after a request that was
 * answered before its commit landed (docs/once.md, "Answer first, then commit": with `answerFirst`, the default,
 * a request with an execution context such as `SELF.fetch(req)` or `app.request(req, undefined, env, ctx)` whose
 * reply may go first), the commit follows within milliseconds. Polls every 10 ms, up to `timeoutMs`. A key the
 * object does not hold (a wrong `scope` or `shards`, or never sent) is null at once: it is not waited for.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param options - scope and shards; `timeoutMs` (default 5000)
 * @returns the record (`committed`, `released`, or running under a lease that ran out: a Worker that died), or null when the object has none
 * @throws Error naming the key when it is still running under a live lease after `timeoutMs`
 * @example
 * const res = await SELF.fetch(deposit('dep-1'))
 * expect(await settledRecord(env.ONCE, 'dep-1')).toMatchObject({ state: 'committed', reply: { status: 201 } })
 */
export async function settledRecord(namespace: DurableObjectNamespace<StableArea>, key: string, options: KeyAddress & { timeoutMs?: number } = {}): Promise<KeyRecord | null> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000)
  for (;;) {
    const record = await keyRecord(namespace, key, options)
    // Running: in flight, or committed provisionally (its final reply still to come), under a lease that lives.
    const running = (record?.state === 'in_flight' || record?.provisional === true) && (record.leaseUntil ?? 0) > Date.now()
    if (!running) return record
    if (Date.now() >= deadline) throw new Error(`hono-once/testing: the key ${JSON.stringify(key)} is still running (attempt ${record.attempt}) after ${options.timeoutMs ?? 5000} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Ends the running attempt's lease now, as if `leaseMs` had gone by since its Worker died: the next retry
 * takes the key over (attempt + 1, same request id). Use it after {@link crashedWorker}.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param address - scope and shards
 * @returns true when the key had a running attempt whose lease was ended
 * @example
 * await endLease(env.ONCE, 'dep-1')
 */
export async function endLease(namespace: DurableObjectNamespace<StableArea>, key: string, address: KeyAddress = {}): Promise<boolean> {
  const lookup = lookupKey(address.scope ?? '', key)
  return runInDurableObject(await stableAreaOf(namespace, key, address), (_object: StableArea, state) => {
    const moved = state.storage.sql.exec("UPDATE records SET lease_until = ? WHERE lookup = ? AND state = 'in_flight'", Date.now() - 1, lookup)
    return moved.rowsWritten > 0
  })
}

/**
 * Plays a Worker that admitted `request` under `key` and died before its handler finished: the key is
 * in flight under a lease nobody renews, commits or releases. A duplicate gets 409 (or waits) until the
 * lease ends ({@link endLease}); then a retry runs the handler, once.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param request - the request the dead Worker was running (method, URL and body make its fingerprint)
 * @param options - scope and shards; `leaseMs` (default 10000, `once()`'s default); `fingerprint`: the app's
 *   `once({ fingerprint })` options when it sets `headers` or `normalizeJson`
 * @returns the object's answer to the admission (`{ kind: 'new', … }` for a new key)
 * @example
 * await crashedWorker(env.ONCE, 'dep-1', new Request('http://x/accounts/alice/deposits', { method: 'POST', body: '{"amount":100}' }))
 */
export async function crashedWorker(
  namespace: DurableObjectNamespace<StableArea>,
  key: string,
  request: Request,
  options: KeyAddress & { leaseMs?: number; ttlMs?: number; fingerprint?: FingerprintOptions } = {},
): Promise<AdmitResult> {
  const body = new Uint8Array(await request.arrayBuffer())
  const print = await fingerprint({ method: request.method, url: request.url, headers: request.headers, body }, options.fingerprint)
  const stub = (await stableAreaOf(namespace, key, options)) as unknown as StableAreaApi
  return stub.admit({ lookup: lookupKey(options.scope ?? '', key), fingerprint: print, leaseMs: options.leaseMs ?? 10_000, ttlMs: options.ttlMs ?? 86_400_000, waitMs: 0 })
}

/**
 * Runs the alarm of the object that holds `key` now, if one is set (expired records go, relays are resent,
 * lagging replicas are fed).
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param address - scope and shards
 * @returns whether an alarm was set and ran
 * @example
 * await runAlarm(env.ONCE, 'dep-1')
 */
export async function runAlarm(namespace: DurableObjectNamespace<StableArea>, key: string, address: KeyAddress = {}): Promise<boolean> {
  return runDurableObjectAlarm(await stableAreaOf(namespace, key, address))
}

/**
 * Moves a key's record past its expiry, as if its TTL had gone by; the next alarm deletes it. The key's replies
 * kept in this isolate's reply caches (`once()`'s `replayCache`, `onceObject()`'s) go too, as a real expiry ends
 * them: a retry after it runs the handler again.
 *
 * @param namespace - the app's binding (`env.ONCE`)
 * @param key - the idempotency key
 * @param address - scope and shards
 * @returns true when there was a record
 * @example
 * await expireKey(env.ONCE, 'dep-1')
 * await runAlarm(env.ONCE, 'dep-1')
 */
export async function expireKey(namespace: DurableObjectNamespace<StableArea>, key: string, address: KeyAddress = {}): Promise<boolean> {
  const lookup = lookupKey(address.scope ?? '', key)
  const moved = await runInDurableObject(await stableAreaOf(namespace, key, address), async (_object: StableArea, state) => {
    const changed = state.storage.sql.exec('UPDATE records SET expires_at = ? WHERE lookup = ?', Date.now() - 1, lookup).rowsWritten > 0
    // The alarm deletes expired records; make sure one is set.
    if (changed && (await state.storage.getAlarm()) === null) await state.storage.setAlarm(Date.now())
    return changed
  })
  // Once the record has moved, so that a replay meanwhile leaves no cached copy behind.
  forgetEverywhere(lookup)
  return moved
}

/**
 * Reads the record of `key` in an `OnceObject` (see `onceObject()`): `stub.onceRecord()` with the lookup built
 * from the key and its scope as `onceObject()` builds it.
 *
 * @param stub - the stub of the object that holds the key (the one the app's `stubOf` returns for the request)
 * @param key - the idempotency key, without the quotes of the header
 * @param address - the key's scope as the app's `onceObject()` computed it (default `''`: no `Authorization`, no
 *   JWT, or a `scope` of your own that returned `''` with `unscoped: 'shared'`)
 * @returns the record's state, request id, attempt, expiry and status, or null when there is none or it expired
 * @example
 * const record = await objectRecord(env.ACCOUNT.get(env.ACCOUNT.idFromName('alice')), 'dep-1')
 * expect(record).toMatchObject({ state: 'committed', status: 201 })
 */
export async function objectRecord(
  stub: { onceRecord(lookup: string): Promise<unknown> },
  key: string,
  address: Pick<KeyAddress, 'scope'> = {},
): Promise<OnceRecordInfo | null> {
  return (await stub.onceRecord(lookupKey(address.scope ?? '', key))) as OnceRecordInfo | null
}
