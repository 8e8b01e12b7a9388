/**
 * Dispatch to regional origins: `proxy()` and `dispatch()` (DESIGN §5).
 *
 * @example
 * import { proxy } from 'hono-once'
 * app.get('/accounts/*', proxy({ origins, strategy: 'hedge' }))
 * @module
 */
export { proxy, dispatch, serverTiming } from './dispatch.js'
export type { ProxyOptions, DivergenceEvent } from './options.js'
export type { Origin, OriginFetcher, Strategy, BreakerOptions, SecretOption, AckQuorum, AttemptRecord } from './types.js'
export { Breaker, OriginHealth, type BreakerState, type OriginHealthReport } from '../shared/health.js'
