/**
 * The deployable gateway Worker: point `main` in wrangler.toml here (or at
 * `hono-once/gateway` in node_modules) and configure it with the
 * `ONCE_CONFIG` var. It is its own entry, apart from `hono-once`, so apps
 * that only use the middleware do not ship the gateway.
 *
 * @example
 * // wrangler.toml: main = "src/gateway.ts"
 * @module
 */
import { gateway } from './gateway/worker.js'

export { StableArea } from './durable/stable-area.js'
export { buildGateway, type GatewayBindings, type GatewayState } from './gateway/app.js'
export { parseGatewayConfig, type GatewayConfig, type GatewayRoute, type GatewayOrigin, type GatewayKeys } from './gateway/config.js'
export type { GatewayStatus, OriginStatus } from './gateway/status.js'
export default gateway
