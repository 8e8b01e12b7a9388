/**
 * Types of the dispatch to origins. What a send needs lives in `shared/types.ts`,
 * what the StableArea stores (relay plans, log entries, replica progress) in
 * `durable/types.ts`; they are re-exported here for the adapter's users.
 */
export type {
  AttemptRecord,
  BreakerOptions,
  DispatchOutcome,
  ForwardRequest,
  Origin,
  OriginFetcher,
  OriginReply,
  ReplicaAck,
  SecretOption,
  WireIdentity,
} from '../shared/types.js'
export type { AckQuorum, LogEntry, OrderedSlot, RelayPlan, ReplicaState, ReplicaView, ReplyPolicy, Strategy } from '../durable/types.js'
