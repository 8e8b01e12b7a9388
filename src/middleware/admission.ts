import type { StableAreaApi, StoredReply } from '../durable/types.js'

/**
 * One admitted request's hold on its record: the lease token, and the RPCs
 * that keep, commit or give back the record. Commit is idempotent per
 * token in the stable area, so it is retried on any failure, each time
 * through a fresh stub (a reset object breaks the stubs that pointed at it).
 *
 * @example
 * const admission = new Admission(connect, lookup, admitted.token, admitted.requestId)
 * const stop = admission.renewEvery(15_000)
 * try { await next() } finally { stop() }
 * await admission.commit(reply, false, ttlMs)
 */
export class Admission {
  #stub: StableAreaApi

  constructor(
    private readonly connect: () => StableAreaApi,
    readonly lookup: string,
    readonly token: string,
    readonly requestId: string,
  ) {
    this.#stub = connect()
  }

  /**
   * Renews the lease every `leaseMs / 2` until the returned function is
   * called: a live Worker keeps its record, a dead one stops renewing.
   */
  renewEvery(leaseMs: number): () => void {
    const timer = setInterval(() => void this.#stub.renew(this.lookup, this.token, leaseMs).catch(() => {}), leaseMs / 2)
    return () => clearInterval(timer)
  }

  /**
   * Stores `reply` and flips the record to committed, trying three times.
   *
   * @returns when the reply expires, or undefined if it could not be stored
   */
  async commit(reply: StoredReply, provisional: boolean, ttlMs: number): Promise<number | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#stub.commit({ lookup: this.lookup, token: this.token, reply, ttlMs, provisional })
        if (result.ok) return result.expiresAt
        console.error(`hono-once: commit of ${this.requestId} refused (${result.reason})`)
        return undefined
      } catch (err) {
        if (attempt >= 2) {
          console.error(`hono-once: commit of ${this.requestId} failed; the key frees when its lease ends`, err)
          return undefined
        }
        await scheduler.wait(50 * 4 ** attempt)
        this.#stub = this.connect()
      }
    }
  }

  /** Gives the record back before the commit point, so a retry runs again. Never throws. */
  async release(): Promise<void> {
    await this.connect()
      .release(this.lookup, this.token)
      .catch((err: unknown) => console.error(`hono-once: release of ${this.requestId} failed; the key frees when its lease ends`, err))
  }
}
