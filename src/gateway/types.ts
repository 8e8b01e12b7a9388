/** Types the gateway's parts share (app, status page, Worker entry), kept apart so that they import one another one way. */
import type { StableArea } from '../durable/stable-area.js'
import type { OriginGroup } from '../origin-adapter/dispatch.js'
import type { GatewayConfig, GatewayRoute } from './config.js'

/** The bindings the gateway Worker expects (wrangler.toml). */
export interface GatewayBindings {
  ONCE: DurableObjectNamespace<StableArea>
  /** The gateway's config, JSON (a var). */
  ONCE_CONFIG?: string | object
  /** Signs every forwarded request (a secret). */
  ONCE_SIGNING_SECRET?: string
  /** Opens `/__once/status`, as `Authorization: Bearer …` (a secret). */
  ONCE_STATUS_TOKEN?: string
}

/** What the gateway knows about itself, for the status page. */
export interface GatewayState {
  config: GatewayConfig
  /** Each route's origin group (its health lives in this isolate). */
  groups: { route: GatewayRoute; group: OriginGroup }[]
}
