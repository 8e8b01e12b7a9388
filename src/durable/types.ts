/**
 * Types that cross the boundary between the middleware (caller) and the
 * `StableArea` Durable Object (callee). Everything here travels over Workers
 * RPC, so it is plain structured-clone data: no classes, no functions.
 */

import type { AckQuorum, ForwardRequest, ReplicaAck, SecretOption } from '../shared/types.js'

import type { JsonValue, StoredReply } from '../shared/reply.js'

export type { AckQuorum, JsonValue, ReplicaAck, StoredReply }


/**
 * Largest body (a request's, or a reply's) that travels in one RPC between
 * the edge and a Durable Object, bytes: workerd refuses a serialized RPC
 * message over 32 MiB, and 256 KiB is room for the rest of the message
 * (headers are at most 128 KiB). Bounds `onceObject()`'s `maxBodyBytes` and
 * the reply an `OnceObject` can answer with.
 *
 * @example
 * if (reply.body.byteLength > MAX_RPC_BODY_BYTES) … // cannot be sent in one call
 */
export const MAX_RPC_BODY_BYTES = 32 * 1024 * 1024 - 256 * 1024

/**
 * A request the Worker relays to origins (DESIGN §4 relays; seed 003's relay
 * server): stored before the first send, so that if the Worker dies the
 * object's alarm resends it with the same request id.
 */
export interface RelayInput {
  request: ForwardRequest
  plan: RelayPlan
  /** The client's idempotency key, forwarded on every send. */
  key: string
}

/** Input of {@link StableAreaApi.admit}. */
export interface AdmitRequest {
  /** Lookup key: scope and idempotency key, already combined. */
  lookup: string
  /** Fingerprint of the request (hex SHA-256). */
  fingerprint: string
  /** How long the admitted caller owns the record before a retry may take over. */
  leaseMs: number
  /** How long the record (and its reply) is kept. */
  ttlMs: number
  /** How long a duplicate may wait inside the object for the original to finish (0 = answer at once). */
  waitMs: number
  /** The request to relay, when the route dispatches to origins: made durable in the same step as the admit. */
  relay?: RelayInput
  /**
   * The ordering domain (DESIGN §3–4): a new request gets the domain's next
   * sequence and joins its log in this same call. Needs `relay` (the log is
   * applied by the replicas the relay plan names).
   */
  domain?: string
  /**
   * Answer only a key the object has a live record of (replay, in flight,
   * mismatch, or a retry taking it over, its slot kept): a key without one
   * gets `unknown`, and nothing is written. `once()` asks so when the route's
   * signing secret is unusable, so that no new record, relay or log entry is
   * ever stored for a request that cannot be sent.
   */
  onlyKnown?: boolean
}

/** Answer of {@link StableAreaApi.admit}: one of four outcomes (DESIGN §3.4), or `unknown` for an `onlyKnown` admit of a new key. */
export type AdmitResult =
  | {
      kind: 'new'
      /** Stable id of the logical request: the same on every attempt. */
      requestId: string
      /** Lease token; commit, release and renew must present it. */
      token: string
      /** 1 for the first run, 2+ when a retry took over a released or expired record. */
      attempt: number
      leaseUntil: number
      /** With a relay: sends earlier attempts made (`Once-Attempt` goes on from here). */
      sends?: number
      /** In an ordering domain: the request's sequence and the replicas to send it to. */
      order?: OrderedSlot
    }
  | { kind: 'replay'; requestId: string; reply: StoredReply; expiresAt: number }
  | { kind: 'in_flight'; requestId: string; retryAfterMs: number }
  | { kind: 'mismatch'; requestId: string }
  | { kind: 'unknown' }

/** Input of {@link StableAreaApi.commit}. */
export interface CommitRequest {
  lookup: string
  token: string
  reply: StoredReply
  ttlMs: number
  /**
   * A provisional commit marks the roll-forward point before the final reply
   * exists: the record is committed (never runs again) and `reply` is what
   * duplicates get until a later non-provisional commit replaces it. The
   * lease is kept (and renewed) meanwhile: duplicates wait for the final
   * reply, and get `reply` only if the lease runs out (the Worker died).
   */
  provisional?: boolean
  /** With `provisional`: how long the lease is kept from now. Default 30000. */
  leaseMs?: number
  /** The record has a relay: mark it completed in the same transaction, with the sends made. */
  relay?: { sends: number }
  /**
   * An ordered request: the replicas' answers that made the quorum, and the replicas that gave none. The first
   * ack is the answer the reply was made from: the log entry's reference answer (two replicas are judged by it),
   * which the stored reply's own digest is only when no ack came (a reply that is not a replica's bytes, such as a
   * `reply-lost`, would make every replica look divergent).
   */
  order?: { acks: ReplicaAck[]; failed: string[] }
}

/** Answer of {@link StableAreaApi.commit}. */
export type CommitResult =
  | {
      ok: true
      expiresAt: number
      /** Ordered requests: replicas whose answer differed from the others' (they are now `suspect`). */
      divergences?: DivergenceEvent[]
      /**
       * The record was already final under this token (a commit whose answer was lost, tried again; or a second
       * final commit of one lease): nothing was written, and the reply it holds may differ from this one.
       */
      again?: true
    }
  /** `lease_lost`: another attempt took the record over; `committed`: it is already final. */
  | { ok: false; reason: 'lease_lost' | 'committed' | 'missing' }

/** What {@link StableAreaApi.inspect} tells about one record. */
export interface RecordInfo {
  state: 'in_flight' | 'committed' | 'released'
  /** Committed at the roll-forward point without its final reply yet (`commit()` without a response). */
  provisional: boolean
  requestId: string
  attempt: number
  leaseUntil: number | null
  expiresAt: number
  /** Status of the committed reply, if any. */
  status: number | null
  /** Duplicates blocked in this object waiting for the original. */
  waiters: number
}

/** What {@link StableAreaApi.stats} counts, since the object started. */
export interface AdmitCounts {
  /** Keys admitted to run (new, or taken over by a retry). */
  admits: number
  /** Duplicates answered with the stored reply. */
  replays: number
  /** Duplicates answered 409: the original was still running. */
  conflicts: number
  /** Keys reused with another request (422). */
  mismatches: number
  /** When the counting started (ms since epoch). */
  since: number
}

/** The RPC surface of the stable area, as callers see it. */
export interface StableAreaApi {
  admit(request: AdmitRequest): Promise<AdmitResult>
  commit(request: CommitRequest): Promise<CommitResult>
  release(lookup: string, token: string, sends?: number): Promise<boolean>
  renew(lookup: string, token: string, leaseMs: number): Promise<boolean>
  inspect(lookup: string): Promise<RecordInfo | null>
  logEntries(domain: string, from: number, to: number): Promise<LogEntry[]>
  acknowledge(domain: string, sequence: number, requestId: string, acks: ReplicaAck[], failed: string[], reference?: ReplicaAck): Promise<DivergenceEvent[]>
  domains(): Promise<DomainStatus[]>
  stats(): Promise<AdmitCounts>
  setReplica(domain: string, name: string, state: ReplicaState): Promise<boolean>
  /** An operator abandons a pending ordered request that holds up its domain (abandon.ts). */
  abandon(domain: string, sequence: number): Promise<{ abandoned: true; requestId: string } | { abandoned: false; reason: string }>
  /** The status object's directory tells a domain's object the origins its replica set now has (directory-spread.ts). */
  adoptReplicaSets(pushes: ReplicaSetPush[]): Promise<DomainStatus[]>
}

/** How a request is spread over the origins (DESIGN §5). */
export type Strategy = 'hedge' | 'failover' | 'replicate'

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
  /**
   * On an attempt after the first (the slot is kept): the request as the domain's log holds it, which is what
   * every replica gets for this sequence (the alarm and gap fill send it too), not the retry's own headers.
   */
  request?: ForwardRequest
}

/**
 * Most entries a live write fills in at one replica before it sends its own (gap fill): a replica further behind
 * is left to the alarm's batched feed, and is not made active while it is.
 *
 * @example
 * if (sequence - expected > MAX_LIVE_FILL) return false // the alarm's to feed
 */
export const MAX_LIVE_FILL = 32

/** A log entry, as sent to a replica that must catch up. */
export interface LogEntry {
  sequence: number
  requestId: string
  key: string
  request: ForwardRequest
  /** The slot was abandoned (a poison request): replicas record it without applying anything. */
  noop: boolean
}


/** What a replica did differently from the others for one sequence (seed 004: compare the later answers). */
export interface DivergenceEvent {
  domain: string
  sequence: number
  requestId: string
  /** The replica that differs. */
  origin: string
  /** What it answered: status and SHA-256 of the body. */
  status: number
  digest: string
  /** What the majority (or the first answer, with two replicas) answered. */
  expected: { status: number; digest: string }
}

/** What the status page and operators read of one domain. */
export interface DomainStatus {
  domain: string
  /** The last sequence given out (0 before the first). */
  head: number
  /** Entries before this were pruned from the log. */
  prunedThrough: number
  replicas: (ReplicaView & { lag: number; reason: string | null })[]
  /** The replica set the domain's plan names, for the status object's directory (replica-sets.ts). */
  replicaSet?: ReplicaSetView | undefined
}

/** A plan's origins: the replica set of the domains that use it. */
export type ReplicaOrigins = RelayPlan['origins']

/**
 * A domain's replica set as it reports it to the status object's directory
 * (issue 15 item 20): the origins its plan names, since when, and the set a
 * write replaced with them, so that the change reaches the domains that got
 * no write.
 */
export interface ReplicaSetView {
  origins: ReplicaOrigins
  /** When these origins were set, by a write or by the directory (ms since epoch; 0: unknown). */
  at: number
  /** The origins a write last replaced (not one that undid a push), and when. */
  replaced?: { origins: ReplicaOrigins; at: number } | undefined
}

/** What the directory hands a domain's object: the origins its replica set now has, learned from a write at `learnedAt`. */
export interface ReplicaSetPush {
  domain: string
  origins: ReplicaOrigins
  learnedAt: number
}
