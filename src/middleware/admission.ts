import type { StableAreaApi, StoredReply } from '../durable/types.js'
import type { DivergenceEvent } from '../origin-adapter/options.js'
import type { FilledAck } from '../origin-adapter/strategies/replicate.js'
import type { LogEntry, OrderedSlot, ReplicaAck } from '../origin-adapter/types.js'
import { rpcFault } from './rpc.js'

/**
 * How long a final commit on its way keeps its lease renewed past the run deadline (ms; counted from the moment
 * `maxRunMs` ends, not from the answer): the runtime's budget for work after the answer (`waitUntil`, about 30 s
 * on Workers).
 */
export const COMMIT_RENEW_MS = 30_000

/** The bound in force: {@link COMMIT_RENEW_MS}, unless a test shortened it ({@link shortenCommitBound}). */
let commitRenewMs = COMMIT_RENEW_MS

/**
 * For tests: sets the bound of {@link COMMIT_RENEW_MS} to `ms` for this isolate (a test of what happens at the bound
 * need not wait 30 s), and returns the function that sets it back. Not part of the package's entries.
 *
 * @param ms - the bound, in ms
 * @returns restore
 * @example
 * const restore = shortenCommitBound(500)
 * try { … } finally { restore() }
 */
export function shortenCommitBound(ms: number): () => void {
  commitRenewMs = ms
  return () => void (commitRenewMs = COMMIT_RENEW_MS)
}

/** Why a reply was not durably stored: another attempt holds the key, or the stable area could not be reached. */
export type CommitFailure = 'lease_lost' | 'unavailable'

/**
 * One admitted request's hold on its record: the lease token, the renewal
 * loop that keeps it while the handler runs, and the RPCs that commit or
 * give back the record.
 *
 * Renewal runs every `leaseMs / 3` and checks its answer. A failed call
 * reconnects (a reset object breaks the stubs that pointed at it) and
 * retries while the lease lasts; a `false` means another attempt took the
 * key over: renewal stops (the run deadline stands), {@link signal} aborts, and {@link lost} stays
 * true so the commit path knows its reply cannot be stored.
 *
 * @example
 * const admission = new Admission(connect, lookup, admitted.token, admitted.requestId, 10_000)
 * admission.startRenewing()
 * try { await next() } finally { admission.stopRenewing() }
 * await admission.commit(reply, false, ttlMs)
 */
export class Admission {
  #stub: StableAreaApi
  readonly #controller = new AbortController()
  #lost = false
  #committed = false
  /** A final commit of this lease was sent (see #lose). */
  #committing = false
  /** The last renewal sent: a release waits for it, so it cannot land after the release and give the lease back. */
  #renewal: Promise<boolean> | undefined
  #expire: () => void = () => {}
  #runDeadline = Number.POSITIVE_INFINITY
  #renewing = false
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Until when this Worker surely holds the lease (from the last confirmed renewal). */
  #heldUntil: number

  /** The relay of this request, when it is durable in the stable area: completed with the commit. */
  relay: { sends: number } | undefined
  /** The replicas' answers that made the quorum (ordered requests): stored with the commit. */
  acks: { acks: ReplicaAck[]; failed: string[] } | undefined
  /** Settles once the final commit landed (with the divergences it found) or the record was given back. */
  readonly settled: Promise<DivergenceEvent[]>
  #settle!: (events: DivergenceEvent[]) => void

  constructor(
    private readonly connect: () => StableAreaApi,
    readonly lookup: string,
    readonly token: string,
    readonly requestId: string,
    readonly leaseMs: number,
    relaySends?: number,
    /** The sequence and replicas of an ordered request. */
    readonly order?: OrderedSlot,
  ) {
    this.relay = relaySends === undefined ? undefined : { sends: relaySends }
    this.settled = new Promise((resolve) => (this.#settle = resolve))
    this.expired = new Promise((resolve) => (this.#expire = () => resolve('timeout')))
    this.#stub = connect()
    this.#heldUntil = Date.now() + leaseMs
  }

  /** Aborts when the lease is lost or the handler ran past `maxRunMs`. */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** True once the stable area said another attempt holds the key. */
  get lost(): boolean {
    return this.#lost
  }

  /** Aborts {@link signal} with `reason` (idempotent). */
  abort(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason)
  }

  /**
   * Starts renewing the lease every `leaseMs / 3` until {@link stopRenewing}. `maxRunMs` bounds the handler (and
   * the reading of its reply): past it {@link expired} resolves and renewal stops, unless a final commit is on
   * its way. That one keeps the lease renewed until it lands or fails (the request took effect: a retry must not
   * take the key over from a live Worker), for at most {@link COMMIT_RENEW_MS} past the deadline.
   */
  startRenewing(maxRunMs = Number.POSITIVE_INFINITY): void {
    this.#renewing = true
    this.#runDeadline = Date.now() + maxRunMs
    this.#schedule()
  }

  /**
   * Resolves when the run deadline given to {@link startRenewing} passes
   * while renewing. One timer serves both the renewals and this deadline:
   * a request that finishes in milliseconds pays for one timer, not two.
   */
  readonly expired: Promise<'timeout'>

  /** Stops renewing; a pending renewal's answer is still checked. */
  stopRenewing(): void {
    this.#renewing = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  #schedule(): void {
    if (!this.#renewing) return
    if (this.#timer !== undefined) clearTimeout(this.#timer) // one timer at a time (#rearm may have set one meanwhile)
    const untilDeadline = this.#runDeadline - Date.now()
    if (this.#committing && !this.#committed) {
      // A final commit on its way: renewed past the run deadline until it settles, within a bound.
      if (untilDeadline + commitRenewMs > 0) this.#timer = setTimeout(() => void this.#renew(), this.leaseMs / 3)
      else {
        console.error(`hono-once: the commit of ${this.requestId} has not landed ${commitRenewMs} ms past maxRunMs; its lease is no longer renewed, and a retry may take the key over`)
        this.#expire() // and a client still waiting for it is answered
      }
      return
    }
    if (untilDeadline <= this.leaseMs / 3) {
      this.#timer = setTimeout(() => this.#deadline(), Math.max(0, untilDeadline))
      return
    }
    this.#timer = setTimeout(() => void this.#renew(), this.leaseMs / 3)
  }

  /** The run deadline passed: the handler is presumed dead, unless a final commit was sent meanwhile (see #schedule). */
  #deadline(): void {
    if (this.#committing && !this.#committed) return void this.#renew()
    this.#expire()
  }

  async #renew(): Promise<void> {
    for (let tries = 0; this.#renewing; tries++) {
      const asked = Date.now()
      try {
        const renewal = this.#stub.renew(this.lookup, this.token, this.leaseMs)
        this.#renewal = renewal
        if (!(await renewal)) return this.#lose()
        this.#heldUntil = asked + this.leaseMs
        break
      } catch (err) {
        this.#stub = this.connect()
        const delay = Math.min(1000, 50 * 2 ** tries)
        if (rpcFault(err) === 'misconfigured' || Date.now() + delay >= this.#heldUntil) {
          console.error(`hono-once: cannot renew the lease of ${this.requestId}; a retry may take the key over`, err)
          break
        }
        await new Promise((r) => setTimeout(r, delay))
      }
    }
    this.#schedule()
  }

  #lose(): void {
    // A renewal that raced a final commit of this lease (sent, its answer maybe not back yet: the record is committed,
    // so the renewal matches nothing): not a takeover. Should the commit find the lease gone, it says so itself.
    if (this.#committed || this.#committing) return this.#rearm()
    this.#lost = true
    // No more renewals, but the run deadline stands: a handler that ignores its aborted signal is still timed out.
    this.#rearm()
    console.warn(`hono-once: the lease of ${this.requestId} was taken over by another attempt; this attempt's reply will not be stored`)
    this.abort(new DOMException('hono-once: the lease on this idempotency key was lost', 'AbortError'))
  }

  /**
   * Renewing is over (this lease's final commit landed, a renewal found the record no longer held while that commit was
   * on its way, or another attempt took the key over), but the run deadline still stands: a handler that committed its
   * reply and then hangs, or ignores its aborted signal, is timed out at `maxRunMs` all the same (at once if that has
   * passed). Not while a final commit is still on its way (it may have landed, its answer not back yet): the handler
   * answered in time, and waiting for its commit is not running past the deadline. That is looked at again every
   * `leaseMs / 3`, for at most {@link COMMIT_RENEW_MS} past the deadline, as renewal is.
   */
  #rearm(): void {
    if (!this.#renewing) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const untilDeadline = this.#runDeadline - Date.now()
    if (this.#committing && !this.#committed) {
      if (untilDeadline + commitRenewMs > 0) {
        this.#timer = setTimeout(() => this.#rearm(), this.leaseMs / 3)
        return
      }
      console.error(`hono-once: the commit of ${this.requestId} has not been answered ${commitRenewMs} ms past maxRunMs; it is no longer waited for (a client still waiting is answered)`)
    }
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, untilDeadline))
  }

  /** A final commit of this lease was sent and has neither landed nor failed yet. */
  get commitInFlight(): boolean {
    return this.#committing && !this.#committed
  }

  /** A final commit is about to be sent (in the next turn, after the answer): from now on it keeps the lease (see #schedule). */
  committingSoon(): void {
    this.#committing = true
  }

  /**
   * Stores `reply` and flips the record to committed. Commits are
   * idempotent per lease token, so a failed call is retried (three tries
   * in all), each through a fresh stub.
   *
   * @returns when the reply expires, or why it was not stored
   */
  async commit(
    reply: StoredReply,
    provisional: boolean,
    ttlMs: number,
  ): Promise<{ ok: true; expiresAt: number; again?: true } | { ok: false; reason: CommitFailure; error?: unknown }> {
    if (this.#lost) return { ok: false, reason: 'lease_lost' }
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#commitOnce({ lookup: this.lookup, token: this.token, reply, ttlMs, provisional, leaseMs: this.leaseMs, relay: this.relay, ...(this.order ? { order: this.acks ?? { acks: [], failed: [] } } : {}) })
        if (result.ok) return result
        // 'committed' (already final) and 'missing' (expired and deleted) both mean this token no longer owns the record.
        this.#lost = true
        this.#committing = false
        return { ok: false, reason: 'lease_lost' }
      } catch (err) {
        if (attempt >= 2 || rpcFault(err) === 'misconfigured') {
          // Not stored: a renewal that says the lease is gone is a takeover again (see #lose).
          this.#committing = false
          return { ok: false, reason: 'unavailable', error: err }
        }
        await new Promise((r) => setTimeout(r, 50 * 4 ** attempt))
        this.#stub = this.connect()
      }
    }
  }

  async #commitOnce(request: Parameters<StableAreaApi['commit']>[0]): ReturnType<StableAreaApi['commit']> {
    if (!request.provisional) this.#committing = true
    const result = await this.#stub.commit(request)
    if (result.ok && !request.provisional) {
      this.#committed = true
      this.#rearm()
      this.#settle(result.divergences ?? [])
    }
    return result
  }

  /** Gives up waiting for a commit (the request ended without one): background work stops waiting. */
  stopWaiting(): void {
    this.#settle([])
  }

  /** Log entries an ordered request's replica lacks (a gap it reported). */
  entries(from: number, to: number): Promise<LogEntry[]> {
    if (!this.order) return Promise.resolve([])
    return this.#stub.logEntries(this.order.domain, from, to)
  }

  /**
   * Reports the answers of the replicas the client did not wait for, and
   * those to earlier entries that gap fill delivered (one call per
   * sequence); returns the divergences found. Never throws.
   */
  async acknowledge(acks: ReplicaAck[], failed: string[], filled: FilledAck[] = []): Promise<DivergenceEvent[]> {
    if (!this.order) return []
    const order = this.order
    const events: DivergenceEvent[] = []
    // Earlier sequences first: a divergence is reported where it began.
    const calls: [number, string, ReplicaAck[], string[]][] = []
    for (const f of [...filled].sort((a, b) => a.sequence - b.sequence)) {
      const same = calls.find(([sequence]) => sequence === f.sequence)
      if (same) same[2].push(f.ack)
      else calls.push([f.sequence, f.requestId, [f.ack], []])
    }
    if (acks.length > 0 || failed.length > 0) calls.push([order.sequence, this.requestId, acks, failed])
    // The client's answer (the quorum's first) is its slot's reference, should the commit not land to set it.
    const reference = this.acks?.acks[0]
    for (const [sequence, requestId, a, f] of calls) {
      try {
        events.push(...(await this.connect().acknowledge(order.domain, sequence, requestId, a, f, sequence === order.sequence ? reference : undefined)))
      } catch (err) {
        console.error(`hono-once: could not report replica answers of ${requestId}; the alarm will collect them`, err)
      }
    }
    return events
  }

  /** Gives the record back before the commit point, so a retry runs again. Never throws. */
  async release(): Promise<void> {
    // No renewal may land after the release (it would give the record its lease back): none is sent from here on, and
    // one on its way is waited for (the release goes by another stub, so nothing else orders the two).
    this.stopRenewing()
    await this.#renewal?.catch(() => {})
    if (this.#lost) return
    await this.connect()
      .release(this.lookup, this.token, this.relay?.sends)
      .catch((err: unknown) => console.error(`hono-once: release of ${this.requestId} failed; the key frees when its lease ends`, err))
  }
}
