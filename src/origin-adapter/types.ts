/**
 * Types that cross between the proxy (in the Worker), the dispatch engine
 * and the StableArea (which resends relays from its alarm). What is stored
 * with a relay is plain structured-clone data.
 */

/** Something that answers fetches: a service binding, or any object with `fetch`. */
export interface OriginFetcher {
  fetch(request: Request): Promise<Response>
}

/**
 * One regional origin of a logical service. With `url`, the incoming path
 * and query are appended to it; with `fetcher` (a service binding) the
 * request goes through it. The list order is the order of preference.
 */
export type Origin = { name: string; url: string; drain?: boolean } | { name: string; fetcher: OriginFetcher }

/** How a request is spread over the origins (DESIGN §5). */
export type Strategy = 'hedge' | 'failover' | 'replicate'

/** Per-origin circuit breaker settings. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failures?: number
  /** How long an open origin is skipped before one probe may go through. Default 10000. */
  cooldownMs?: number
}

/**
 * A signing secret, by name: the Worker secret (or var) `env` holds its
 * value, read when a request is sent, never stored; `keyid` (default: the
 * env name) is what origins know it by, so a rotation changes it.
 */
export interface SecretOption {
  env: string
  keyid?: string | undefined
}

/**
 * A request as it is forwarded and, for relays, stored: method, path with
 * query, headers without hop-by-hop ones, and the exact body bytes.
 */
export interface ForwardRequest {
  method: string
  /** Path and query, appended to each origin's URL. */
  path: string
  headers: [string, string][]
  body: Uint8Array
}

/** The identity and ordering a forwarded logical request carries (DESIGN §6). */
export interface WireIdentity {
  requestId: string
  /** The client's key, as parsed (sent as an sf-string). */
  key?: string | undefined
  domain?: string | undefined
  sequence?: number | undefined
  /** Send as a no-op slot (`Once-Noop: ?1`). */
  noop?: boolean | undefined
}

/**
 * What the StableArea keeps with a relay so its alarm can resend it after
 * the Worker died: the strategy's limits and the origins it may reach (only
 * `url` origins: a service binding cannot be stored).
 */
export interface RelayPlan {
  strategy: Strategy
  /** The origins it may reach; `drain` marks a replica taken out of rotation. */
  origins: { name: string; url: string; drain?: boolean }[]
  timeoutMs: number
  deadlineMs: number
  maxAttempts: number
  maxResponseBytes: number
  /** The signing secret's name (never its value); absent when unsigned. */
  secret?: SecretOption | undefined
  /** The route's allow-list of forwarded request headers, when it has one. */
  forwardHeaders?: string[] | undefined
  /** `replicate` only: how many replica answers the client waits for. */
  ackQuorum?: AckQuorum | undefined
  /** `replicate` only: how long applied log entries are kept for replicas that join later. */
  logRetentionMs?: number | undefined
  /** `replicate` only: how long every replica must refuse a request for good before it is poison. */
  poisonAfterMs?: number | undefined
  /** The route's reply policy (from `once()`), so a reply the alarm commits is kept as the Worker would keep it. */
  reply?: ReplyPolicy | undefined
}

/** How `once()` keeps a reply: which headers a replay carries, and the largest body kept. */
export interface ReplyPolicy {
  /** Lower-case allow-list of replayed headers; absent: every header but the never-replayed ones. */
  replayHeaders?: string[] | undefined
  maxReplyBytes: number
}

/** Where a replica stands in one ordering domain (DESIGN §4 origin progress). */
export type ReplicaState = 'joining' | 'active' | 'lagging' | 'suspect' | 'draining' | 'stale'

/** A replica as the domain's StableArea sees it. */
export interface ReplicaView {
  name: string
  url: string
  state: ReplicaState
  /** The highest sequence it has applied (all before it too). */
  acked: number
}

/** What the admit of an ordered request tells the Worker: its slot and whom to send it to. */
export interface OrderedSlot {
  domain: string
  sequence: number
  replicas: ReplicaView[]
}

/** One replica's final answer to one sequence: what divergence is judged on. */
export interface ReplicaAck {
  origin: string
  status: number
  /** Hex SHA-256 of the answer's body. */
  digest: string
}

/** A log entry, as sent to a replica that must catch up. */
export interface LogEntry {
  sequence: number
  requestId: string
  key: string
  request: ForwardRequest
  /** The slot was abandoned (a poison request): replicas record it without applying anything. */
  noop: boolean
}

/** How many replicas must acknowledge before the client is answered. */
export type AckQuorum = 1 | 'majority' | 'all'

/** One attempt at one origin, for `Server-Timing` and the logs. */
export interface AttemptRecord {
  origin: string
  attempt: number
  /** HTTP status, or why there was none. */
  outcome: number | 'timeout' | 'network' | 'aborted' | 'too-large' | 'skipped'
  ms: number
}

/** An origin's answer, read whole. */
export interface OriginReply {
  status: number
  headers: [string, string][]
  body: Uint8Array
}

/** The result of a dispatch: the winning answer, or why there was none. */
export type DispatchOutcome =
  | { kind: 'answer'; origin: string; reply: OriginReply; attempts: AttemptRecord[] }
  | { kind: 'failed'; status: 502 | 504; detail: string; attempts: AttemptRecord[] }
