/**
 * The dispatch gateway of `test/e2e/fixtures/proxy` under `wrangler dev`,
 * with its origins given at runtime, on a fixed port and persisted state so
 * it can be killed with SIGKILL and restarted where it was.
 *
 * @module
 */
import { type RestartableDev, startRestartable } from './restartable.js'

/** A gateway process that can crash and come back on the same state and port. */
export type Gateway = RestartableDev

/** The record the stable area holds for a key (`GET /__debug/records/:key`). */
export interface DebugRecord {
  state: 'in_flight' | 'committed' | 'released'
  provisional: boolean
  requestId: string
  attempt: number
  leaseUntil: number | null
  expiresAt: number
  status: number | null
  waiters: number
}

/**
 * The secret the proxy fixture signs with (keyid `ONCE_SIGNING_SECRET`): give it to the origins,
 * `startOrigin({ secrets: { ONCE_SIGNING_SECRET: E2E_SIGNING_SECRET } })`.
 *
 * @example
 * const origin = await startOrigin({ name: 'eu', secrets: { ONCE_SIGNING_SECRET: E2E_SIGNING_SECRET } })
 */
export const E2E_SIGNING_SECRET = 'e2e-signing-secret-0123456789'

/**
 * Starts the proxy fixture under `wrangler dev`, signing with {@link E2E_SIGNING_SECRET}.
 *
 * @param origins - name → URL, in order of preference (the `ORIGINS` var)
 * @param vars - more vars (`TIMEOUT_MS`, `DEADLINE_MS`)
 * @returns the gateway
 * @example
 * const gw = await startGateway({ eu: origin.url })
 * await gw.kill()
 * await gw.restart()
 */
export async function startGateway(origins: Record<string, string>, vars: Record<string, string> = {}): Promise<Gateway> {
  const ORIGINS = Object.entries(origins).map(([name, url]) => `${name}=${url}`).join(',')
  return startRestartable('test/e2e/fixtures/proxy/wrangler.toml', { ONCE_SIGNING_SECRET: E2E_SIGNING_SECRET, ...vars, ORIGINS }, 'hono-once-e2e-proxy-')
}

/**
 * One deposit through the gateway, with plain `fetch` (no retries).
 *
 * @example
 * const res = await deposit(gw.url, 'alice', 'k-1', 100)
 */
export function deposit(base: string, account: string, key: string, amount: number, timeoutMs = 15_000): Promise<Response> {
  return fetch(`${base}/accounts/${account}/deposits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
    body: JSON.stringify({ amount }),
    signal: AbortSignal.timeout(timeoutMs),
  })
}

/**
 * The stable area's record of `key`, and the gateway's clock.
 *
 * @example
 * const { record } = await recordOf(gw.url, 'k-1')
 */
export async function recordOf(base: string, key: string): Promise<{ record: DebugRecord | null; now: number }> {
  const res = await fetch(`${base}/__debug/records/${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(5000) })
  if (res.status !== 200) throw new Error(`GET /__debug/records/${key}: ${res.status} ${await res.text()}`)
  return (await res.json()) as { record: DebugRecord | null; now: number }
}
