import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { expect } from 'vitest'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { DomainStatus, RelayPlan, ReplicaOrigins, StableAreaApi } from '../../src/durable/types.js'

/** Helpers of the directory's tests (issue 15 item 20): domains' objects, their alarms and reports, and reports by hand. */

/** The object of an ordering domain, as `once()` names it. */
export const domainStub = (domain: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${domain}`))

/** The status object, which holds the directory. */
export const statusStub = () => env.ONCE.get(env.ONCE.idFromName('once/status'))

/** A domain as its object tells it now. */
export const domainState = async (domain: string): Promise<DomainStatus | undefined> =>
  (await (domainStub(domain) as unknown as StableAreaApi).domains()).find((d) => d.domain === domain)

/** Puts the object's alarm far ahead (so it does not run by itself meanwhile), then runs it once, now. */
export async function runAlarmOnce(stub: DurableObjectStub<StableArea>): Promise<void> {
  await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
  expect(await runDurableObjectAlarm(stub), 'the alarm ran').toBe(true)
  await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
}

/** Makes the object's status report due now and runs its alarm once. */
export async function reportNow(stub: DurableObjectStub<StableArea>): Promise<void> {
  await runInDurableObject(stub, (_i, state) => void state.storage.sql.exec(`INSERT INTO counters (name, total) VALUES ('report_due', 0) ON CONFLICT (name) DO UPDATE SET total = 0`))
  await runAlarmOnce(stub)
}

/** A domain's report with its replica set, as an object sends it to the directory. */
export const reported = (domain: string, origins: ReplicaOrigins, at: number, replaced?: { origins: ReplicaOrigins; at: number }): DomainStatus => ({
  domain,
  head: 1,
  prunedThrough: 0,
  replicas: [],
  replicaSet: { origins, at, ...(replaced ? { replaced } : {}) },
})

/**
 * A fresh object holding domain `acct`, written to directly (no origin is sent anything): `write(origins)` admits
 * one request with a plan naming `origins`, `state()` reads the domain back, `originsSetAt(at)` dates its origins.
 */
export function domainObject(domain = 'acct') {
  const stub = env.ONCE.get(env.ONCE.idFromName(`directory-test/${crypto.randomUUID()}`)) as unknown as StableAreaApi
  const plan = (origins: ReplicaOrigins): RelayPlan => ({ strategy: 'replicate', origins, timeoutMs: 1000, deadlineMs: 2000, maxAttempts: 1, maxResponseBytes: 1024 })
  const write = async (origins: ReplicaOrigins, lookup: string = crypto.randomUUID()) => {
    const relay = { key: lookup, plan: plan(origins), request: { method: 'POST', path: '/x', headers: [], body: new Uint8Array() } }
    return stub.admit({ lookup, fingerprint: lookup, leaseMs: 60_000, ttlMs: 60_000, waitMs: 0, domain, relay })
  }
  const state = async () => (await stub.domains()).find((d) => d.domain === domain)!
  /** Dates the domain's origins back to `at` (so a push learned at `at + 1` is newer, and any later write newer still). */
  const originsSetAt = (at: number) =>
    runInDurableObject(stub as unknown as DurableObjectStub, (_i, st) => void st.storage.sql.exec('UPDATE domains SET plan_at = ? WHERE domain = ?', at, domain))
  return { stub, write, state, originsSetAt }
}
