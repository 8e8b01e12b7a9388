/**
 * The deployable gateway Worker, configured by the `ONCE_CONFIG` var. In this
 * repository `main` in wrangler.toml points here; from the npm package, re-export
 * it from your own entry (`npx hono-once init` writes that file), since wrangler's
 * `main` takes a file, not a package export. It is its own entry, apart from
 * `hono-once`, so apps that only use the middleware do not ship the gateway.
 *
 * @example
 * // src/index.ts, with main = "src/index.ts" in wrangler.toml
 * export { default, StableArea } from 'hono-once/gateway'
 * @module
 */
import { gateway } from './gateway/worker.js'

export { StableArea } from './durable/stable-area.js'
export { buildGateway, type GatewayBindings, type GatewayState } from './gateway/app.js'
export { parseGatewayConfig, type GatewayConfig, type GatewayRoute, type GatewayOrigin, type GatewayKeys } from './gateway/config.js'
export type { GatewayStatus, OriginStatus } from './gateway/status.js'
export type { GatewayCors } from './gateway/cors.js'
export default gateway
