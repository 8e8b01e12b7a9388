import type { DivergenceEvent } from '../origin-adapter/options.js'
import type { OrderedLink, RelayLink } from '../origin-adapter/relay-link.js'
import type { FilledAck } from '../origin-adapter/strategies/replicate.js'
import type { ForwardRequest, LogEntry, OrderedSlot, RelayPlan, ReplicaAck } from '../origin-adapter/types.js'
import type { Admission } from './admission.js'

/**
 * The {@link RelayLink} of one request admitted by `once()`: what
 * `proxy()`/`dispatch()` learn from, and report to, its {@link Admission}
 * (the relay it completes or records, the sends it stores with the commit,
 * an ordered request's quorum and the later replicas' answers).
 *
 * @example
 * setRelayLink(c, new AdmissionLink(admission, id.key, admitted.relayed))
 */
export class AdmissionLink implements RelayLink {
  readonly requestId: string
  readonly sends: number
  readonly order: OrderedLink | undefined
  #dispatches = 0

  /**
   * @param admission - the request's hold on its record
   * @param key - the client's key
   * @param request - the request as stored with the admit, on a `proxy()` route
   */
  constructor(
    private readonly admission: Admission,
    readonly key: string,
    readonly request: ForwardRequest | undefined,
  ) {
    this.requestId = admission.requestId
    this.sends = admission.relay?.sends ?? 0
    this.order = admission.order ? new AdmissionOrder(admission, admission.order) : undefined
  }

  nextDispatch(): number {
    return ++this.#dispatches
  }

  async record(request: ForwardRequest, plan: RelayPlan): Promise<void> {
    if (this.admission.relay === undefined) await this.admission.recordRelay({ request, plan, key: this.key })
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
