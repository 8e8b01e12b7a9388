import type { Context } from 'hono'
import type { DivergenceEvent } from './options.js'
import type { FilledAck } from './strategies/replicate.js'
import type { ForwardRequest, LogEntry, OrderedSlot, RelayPlan, ReplicaAck } from './types.js'

/**
 * What `once()` tells the dispatch engine about the admitted request it
 * wraps: its identity on the wire, and whether its relay is already durable
 * in the stable area. Internal: the link between the middleware and
 * `proxy()`/`dispatch()`.
 */
export interface RelayLink {
  requestId: string
  key: string
  /** The relay was stored with the admit (the route's `proxy()` was seen). */
  durable: boolean
  /** Sends earlier attempts made; this attempt's first `Once-Attempt` is one more. */
  sends: number
  /** Makes the relay durable with one more round trip (for `dispatch()` inside a handler). */
  record(request: ForwardRequest, plan: RelayPlan): Promise<void>
  /** The request as once() stored it with the relay (its body already read), when it did. */
  request?: ForwardRequest | undefined
  /** Counts the sends the dispatch made, stored with the commit or release. */
  sent(n: number): void
  /** How many dispatches this request has made so far (a second one gets its own request id). */
  dispatches: number
  /** An ordered request's slot: its domain, sequence and the replicas to send it to. */
  order?: OrderedSlot | undefined
  /** Reads missing log entries of the domain (for a replica that reports a gap). */
  entries(from: number, to: number): Promise<LogEntry[]>
  /** Stores the quorum's answers with the commit. */
  quorum(acks: ReplicaAck[], failed: string[]): void
  /**
   * Reports the other replicas' answers once they are in, and the answers to
   * earlier entries that gap fill delivered; returns divergences.
   */
  acknowledge(acks: ReplicaAck[], failed: string[], filled?: FilledAck[]): Promise<DivergenceEvent[]>
  /** Settles when once() has committed (with the divergences the commit found) or given up. */
  committed: Promise<DivergenceEvent[]>
}

const links = new WeakMap<Context, RelayLink>()

/**
 * The link `once()` left on this request, if any.
 *
 * @param c - the request context
 * @returns the link, or undefined outside `once()`
 * @example
 * const link = relayLinkOf(c)
 * if (link && !link.durable) await link.record(request, plan)
 */
export function relayLinkOf(c: Context): RelayLink | undefined {
  return links.get(c)
}

/**
 * Leaves a link on the request for `proxy()`/`dispatch()`.
 *
 * @param c - the request context
 * @param link - the link
 * @example
 * setRelayLink(c, { requestId, key, durable: true, sends: 0, record, sent })
 */
export function setRelayLink(c: Context, link: RelayLink): void {
  links.set(c, link)
}
