/**
 * The deployable gateway itself (the root `wrangler.toml`, `src/gateway.ts`)
 * under `wrangler dev`, configured the way a user configures it: the
 * `ONCE_CONFIG` JSON var, and the `ONCE_SIGNING_SECRET` and
 * `ONCE_STATUS_TOKEN` secrets (given as vars here). It runs on a fixed port
 * and persisted state, so it can be killed with SIGKILL and come back where
 * it was.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startWranglerDev, type DevServer } from '../../../scripts/wrangler-dev.js'

/** What `/__once/status` says of one ordering domain (src/durable/ordered.ts `DomainStatus`, restated: this file runs in Node). */
export interface DomainStatusJson {
  domain: string
  head: number
  prunedThrough: number
  replicas: { name: string; url: string; state: string; acked: number; lag: number; reason: string | null }[]
}

/** What `GET /__once/status` answers (src/gateway/status.ts `GatewayStatus`, the parts the tests read). */
export interface GatewayStatusJson {
  origins: { name: string; url: string; state: string; breaker: string }[]
  domains: DomainStatusJson[]
  suspects: { domain: string; name: string; reason: string | null }[]
  counts: { admits: number; replays: number; conflicts: number; mismatches: number }
  generatedAt: string
}

/** A config-driven gateway process that can crash and come back on the same state and port. */
export interface ConfigGateway {
  /** e.g. http://127.0.0.1:40123; the same across restarts. */
  readonly url: string
  /** The bearer token of `/__once/status`. */
  readonly statusToken: string
  /** SIGKILL to the whole process group: workerd, the Worker and its Durable Objects die mid-work. */
  kill(): Promise<void>
  /** Starts `wrangler dev` again on the same port, persisted state and vars (kills the running one first). */
  restart(): Promise<void>
  /** `GET /__once/status` as JSON, with the token. */
  status(): Promise<GatewayStatusJson>
  /** Everything the current process printed. */
  output(): string
  /** Kills it and deletes its state. */
  close(): Promise<void>
}

/**
 * Starts the root `wrangler.toml`'s gateway with `config` as its `ONCE_CONFIG`.
 *
 * @param config - the gateway's config (origins, routes, key policy)
 * @param secrets - the signing secret shared with the origins, and the status token
 * @returns the gateway
 * @example
 * const gw = await startConfigGateway({ origins: [{ name: 'r1', url: r1.url }], routes: [{ path: '/*' }] }, { signingSecret: 's', statusToken: 't' })
 * await gw.restart()
 * await gw.close()
 */
export async function startConfigGateway(config: object, secrets: { signingSecret: string; statusToken: string }, options: { timeoutMs?: number } = {}): Promise<ConfigGateway> {
  const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-e2e-gateway-'))
  const port = await freePort()
  const start = {
    config: 'wrangler.toml',
    // Below the e2e project's hook timeout, so a start that hangs fails with wrangler's output.
    timeoutMs: options.timeoutMs ?? 45_000,
    port,
    persistTo,
    // wrangler splits each --var on its first ':', so the JSON (with its URLs) arrives whole.
    vars: { ONCE_CONFIG: JSON.stringify(config), ONCE_SIGNING_SECRET: secrets.signingSecret, ONCE_STATUS_TOKEN: secrets.statusToken },
  }
  let dev: DevServer | undefined
  try {
    dev = await startWranglerDev(start)
  } catch (err) {
    rmSync(persistTo, { recursive: true, force: true })
    throw err
  }
  const url = dev.url
  return {
    url,
    statusToken: secrets.statusToken,
    async kill() {
      await dev?.stop('SIGKILL')
    },
    async restart() {
      await dev?.stop('SIGKILL')
      dev = undefined
      dev = await startWranglerDev(start)
    },
    async status() {
      const res = await fetch(`${url}/__once/status`, { headers: { authorization: `Bearer ${secrets.statusToken}` }, signal: AbortSignal.timeout(10_000) })
      if (res.status !== 200) throw new Error(`GET /__once/status: ${res.status} ${await res.text()}`)
      return (await res.json()) as GatewayStatusJson
    },
    output: () => dev?.output() ?? '',
    async close() {
      await dev?.stop('SIGKILL')
      dev = undefined
      rmSync(persistTo, { recursive: true, force: true })
    },
  }
}
