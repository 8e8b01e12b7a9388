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
import { type RestartableDev, startRestartable } from './restartable.js'

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
export interface ConfigGateway extends RestartableDev {
  /** The bearer token of `/__once/status`. */
  readonly statusToken: string
  /** `GET /__once/status` as JSON, with the token. */
  status(): Promise<GatewayStatusJson>
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
  // wrangler splits each --var on its first ':', so the JSON (with its URLs) arrives whole.
  const vars = { ONCE_CONFIG: JSON.stringify(config), ONCE_SIGNING_SECRET: secrets.signingSecret, ONCE_STATUS_TOKEN: secrets.statusToken }
  const dev = await startRestartable('wrangler.toml', vars, 'hono-once-e2e-gateway-', options.timeoutMs ?? 45_000)
  return {
    ...dev,
    url: dev.url,
    statusToken: secrets.statusToken,
    async status() {
      const res = await fetch(`${dev.url}/__once/status`, { headers: { authorization: `Bearer ${secrets.statusToken}` }, signal: AbortSignal.timeout(10_000) })
      if (res.status !== 200) throw new Error(`GET /__once/status: ${res.status} ${await res.text()}`)
      return (await res.json()) as GatewayStatusJson
    },
  }
}
