import type { DivergenceEvent } from '../origin-adapter/options.js'
import type { OrderedLink, RelayLink } from '../origin-adapter/relay-link.js'
import type { FilledAck } from '../origin-adapter/strategies/replicate.js'
import type { ForwardRequest, LogEntry, OrderedSlot, ReplicaAck } from '../origin-adapter/types.js'
import type { Admission } from './admission.js'
import type { StoredRelay } from './admit.js'
import type { StoredReply } from '../durable/types.js'
import { bufferedBody, storesAs } from '../shared/reply.js'

/**
 * The {@link RelayLink} of one request admitted by `once()`: what
 * `proxy()`/`dispatch()` learn from, and report to, its {@link Admission}
 * (the relay it completes, the sends it stores with the commit,
 * an ordered request's quorum and the later replicas' answers).
 *
 * @example
 * setRelayLink(c, new AdmissionLink(admission, id.key, admitted.relayed))
 */
export class AdmissionLink implements RelayLink {
  readonly requestId: string
  readonly sends: number
  readonly order: OrderedLink | undefined
  readonly request: ForwardRequest | undefined
  #dispatches = 0
  /** proxy()'s answer to the stored request: its status, a copy of its headers and its bytes, as they were then. */
  #answer: { status: number; headers: Headers; body: Uint8Array | undefined } | undefined
  #passedOn: Response | undefined

  /**
   * @param admission - the request's hold on its record
   * @param key - the client's key
   * @param stored - the request as stored with the admit and the proxy() that sends it, on a `proxy()` route
   */
  constructor(
    private readonly admission: Admission,
    readonly key: string,
    private readonly stored: StoredRelay | undefined,
  ) {
    this.requestId = admission.requestId
    this.sends = admission.relay?.sends ?? 0
    this.order = admission.order ? new AdmissionOrder(admission, admission.order) : undefined
    this.request = stored?.request
  }

  nextDispatch(): number {
    return ++this.#dispatches
  }

  get dispatches(): number {
    return this.#dispatches
  }

  storedFor(owner: object): boolean {
    return this.stored !== undefined && this.stored.owner === owner
  }

  answered(res: Response): void {
    this.#answer = { status: res.status, headers: new Headers(res.headers), body: bufferedBody(res) }
  }

  passedOn(res: Response): void {
    this.#passedOn = res
  }

  /**
   * Whether `res`, the route's answer, is the one `proxy()` passed on though no origin applied the request
   * (the same object: a middleware that made another answer made its own, which is stored by its status).
   *
   * @param res - the route's answer
   * @returns true only for proxy()'s passed-on answer, as it was
   */
  appliedNothing(res: Response): boolean {
    return this.#passedOn !== undefined && res === this.#passedOn
  }

  /**
   * Whether `reply`, the route's final answer as once() stores it, is what proxy()'s answer to the stored
   * request stores as (the same status, replayed headers and bytes): then the origins hold it under the request
   * id, and once() may answer before its commit. Headers outer middleware set for this caller (CORS, a request id)
   * are not stored, so they do not count; a middleware that changed the body, status or a stored header does.
   *
   * @param reply - the route's answer in its stored form
   * @param replayed - which headers are stored (the route's reply policy)
   * @returns true only for proxy()'s answer, as it was
   */
  isStoredRequestAnswer(reply: StoredReply, replayed: (name: string) => boolean): boolean {
    return this.#answer !== undefined && storesAs(this.#answer, reply, replayed)
  }

  sent(n: number): void {
    if (this.admission.relay) this.admission.relay.sends += n
  }
}

/** The {@link OrderedLink} of an admitted ordered request. */
class AdmissionOrder implements OrderedLink {
  readonly committed: Promise<DivergenceEvent[]>

  constructor(
    private readonly admission: Admission,
    readonly slot: OrderedSlot,
  ) {
    this.committed = admission.settled
  }

  entries(from: number, to: number): Promise<LogEntry[]> {
    return this.admission.entries(from, to)
  }

  quorum(acks: ReplicaAck[], failed: string[]): void {
    this.admission.acks = { acks, failed }
  }

  acknowledge(acks: ReplicaAck[], failed: string[], filled?: FilledAck[]): Promise<DivergenceEvent[]> {
    return this.admission.acknowledge(acks, failed, filled)
  }
}
