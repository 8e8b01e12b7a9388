/**
 * The demo Worker's per-request log lines: `once-demo {json}` in wrangler's
 * output, which `npm start` turns into its live lines. Shared by
 * examples/demo/worker.ts (workerd) and scripts/start.ts (Node).
 *
 * @module
 */

/** The prefix of each line; JSON follows. */
export const DEMO_LOG_PREFIX = 'once-demo '

/** A request that went through the gateway. */
export interface DemoLogLine {
  kind: 'request'
  method: string
  path: string
  /** The client's Idempotency-Key, as sent (quotes removed), or null for reads. */
  key: string | null
  status: number
  /** `Once-Origin`: the region that answered, or null (gateway problem, no origin involved). */
  origin: string | null
  /** `Idempotent-Replayed: true`: the stored answer of an earlier request with this key. */
  replayed: boolean
  /** `Once-Sequence`: the request's place in its account's order. */
  sequence: string | null
  ms: number
}

/** A demo control action (`POST /__demo/regions/:name/down|up|slow`). */
export interface DemoControlLine {
  kind: 'control'
  region: string
  action: 'down' | 'up' | 'slow'
  latencyMs: number
  down: boolean
}
