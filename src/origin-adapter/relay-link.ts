import type { Context } from 'hono'
import type { DivergenceEvent } from './options.js'
import type { FilledAck } from './strategies/replicate.js'
import type { ForwardRequest, LogEntry, OrderedSlot, ReplicaAck } from './types.js'

/**
 * What `once()` tells `proxy()`/`dispatch()` about the admitted request it
 * wraps, and what the dispatch reports back: the request's identity on the
 * wire, its relay (stored with the admit when `proxy()` is the route's next
 * handler), and for an ordered request its {@link OrderedLink}. Internal:
 * the link between the middleware and the dispatch; `once()` implements it
 * over its admission (middleware/admission-link.ts).
 *
 * @example
 * const link = relayLinkOf(c)
 * const nth = link ? link.nextDispatch() : 1
 * const stored = link && nth === 1 && link.storedFor(group) ? link.request : undefined
 */
export interface RelayLink {
  /** The logical request's id, the same on every attempt (`Once-Request-Id`). */
  readonly requestId: string
  /** The client's `Idempotency-Key`. */
  readonly key: string
  /** The request as once() read and stored it with the admit (a `proxy()` route): the very bytes to send. */
  readonly request: ForwardRequest | undefined
  /** Sends that earlier attempts of this request made; this attempt's first `Once-Attempt` is one more. */
  readonly sends: number
  /** An ordered request's part: its slot, the domain's log and the replicas' answers; undefined when unordered. */
  readonly order: OrderedLink | undefined
  /** Numbers this request's dispatches: 1 is the logical request itself; a further one gets its own request id. */
  nextDispatch(): number
  /** How many dispatches this request has made so far (0 before its first). */
  readonly dispatches: number
  /** Whether the request stored with the admit is the one `owner` (a proxy's origin group) sends: its proxy() was the route's. */
  storedFor(owner: object): boolean
  /** Marks `res` as the answer to the stored request, as `proxy()` returns it: once() may answer it before its commit. */
  answered(res: Response): void
  /** Marks `res` as an answer `proxy()` passes on though no origin applied the request: once() gives the key back. */
  passedOn(res: Response): void
  /** Counts the sends the first dispatch made; they are stored with the commit or release. */
  sent(n: number): void
}

/**
 * The ordered request's part of a {@link RelayLink}: where it stands in its
 * domain, and how the replicas' answers reach the stable area.
 *
 * @example
 * const result = await replicate({ ...input, slot: order.slot, entries: (from, to) => order.entries(from, to) })
 * order.quorum(result.acks, [])
 */
export interface OrderedLink {
  /** Its domain, sequence and the replicas to send it to. */
  readonly slot: OrderedSlot
  /** Settles when once() has committed (with the divergences its commit found) or given up. */
  readonly committed: Promise<DivergenceEvent[]>
  /** Reads the domain's log entries `from`..`to` (for a replica that reports a gap). */
  entries(from: number, to: number): Promise<LogEntry[]>
  /** Keeps the answers that made the quorum, to be stored with the commit. */
  quorum(acks: ReplicaAck[], failed: string[]): void
  /**
   * Reports the other replicas' answers once they are in, and the answers to
   * earlier entries that gap fill delivered; returns the divergences found.
   * Never throws.
   */
  acknowledge(acks: ReplicaAck[], failed: string[], filled?: FilledAck[]): Promise<DivergenceEvent[]>
}

const links = new WeakMap<Context, RelayLink>()

/**
 * The link `once()` left on this request, if any.
 *
 * @param c - the request context
 * @returns the link, or undefined outside `once()`
 * @example
 * const link = relayLinkOf(c)
 * const requestId = link?.requestId ?? uuidv7()
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
 * setRelayLink(c, new AdmissionLink(admission, id.key, admitted.relayed))
 */
export function setRelayLink(c: Context, link: RelayLink): void {
  links.set(c, link)
}
