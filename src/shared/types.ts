/**
 * Types of sending a request to an origin, shared by the dispatch engine (in
 * the Worker), the StableArea's alarm (which resends relays and catches
 * replicas up) and the stored relay plans. Plain structured-clone data.
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

/** One attempt at one origin, for `Server-Timing` and the logs. */
export interface AttemptRecord {
  origin: string
  attempt: number
  /** HTTP status, or why there was none. */
  outcome: number | 'timeout' | 'network' | 'aborted' | 'too-large' | 'skipped'
  ms: number
  /** The receiver's problem (`signature-invalid`, `handler-failed`, …) when it refused the request. */
  reason?: string
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
  | {
      kind: 'failed'
      status: 502 | 504
      detail: string
      attempts: AttemptRecord[]
      /** An origin's refusal that will not pass by itself (`handler-failed`, `body-too-large`): what the client gets. */
      refusal?: { origin: string; reply: OriginReply }
      /** How long the origins asked to wait (`Retry-After`), when they did: the client's `Retry-After`. */
      retryAfterMs?: number
    }

/** One replica's final answer to one sequence: what divergence is judged on. */
export interface ReplicaAck {
  origin: string
  status: number
  /** Hex SHA-256 of the answer's body. */
  digest: string
}

/** How many replicas must acknowledge before the client is answered. */
export type AckQuorum = 1 | 'majority' | 'all'
