/**
 * The dispatch gateway of `test/e2e/fixtures/proxy` under `wrangler dev`,
 * with its origins given at runtime, on a fixed port and persisted state so
 * it can be killed with SIGKILL and restarted where it was.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startWranglerDev, type DevServer } from '../../../scripts/wrangler-dev.js'

/** A gateway process that can crash and come back on the same state and port. */
export interface Gateway {
  /** e.g. http://127.0.0.1:40123; the same across restarts. */
  readonly url: string
  /** SIGKILL to the whole process group: workerd, the Worker and its Durable Objects die mid-work. */
  kill(): Promise<void>
  /** Starts `wrangler dev` again on the same port, persisted state and vars. */
  restart(): Promise<void>
  /** Everything the current process printed. */
  output(): string
  /** Kills it and deletes its state. */
  close(): Promise<void>
}

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
 * Starts the proxy fixture under `wrangler dev`.
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
  const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-e2e-proxy-'))
  const port = await freePort()
  const options = {
    config: 'test/e2e/fixtures/proxy/wrangler.toml',
    // Below the e2e project's hook timeout, so a start that hangs fails with wrangler's output.
    timeoutMs: 30_000,
    port,
    persistTo,
    vars: { ...vars, ORIGINS: Object.entries(origins).map(([name, url]) => `${name}=${url}`).join(',') },
  }
  let dev: DevServer | undefined
  try {
    dev = await startWranglerDev(options)
  } catch (err) {
    rmSync(persistTo, { recursive: true, force: true })
    throw err
  }
  const url = dev.url
  return {
    url,
    async kill() {
      await dev?.stop('SIGKILL')
    },
    async restart() {
      await dev?.stop('SIGKILL')
      dev = undefined
      dev = await startWranglerDev(options)
    },
    output: () => dev?.output() ?? '',
    async close() {
      await dev?.stop('SIGKILL')
      dev = undefined
      rmSync(persistTo, { recursive: true, force: true })
    },
  }
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
