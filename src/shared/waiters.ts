/**
 * Callers parked on a key until someone wakes the key or their time is up:
 * duplicates blocked inside the StableArea until the original commits or is
 * released (seed 003's `PA_blockRequest`), and, at an origin, ordered requests
 * waiting for their domain to reach their sequence. A wait never outlives
 * its timer, and a key with no one waiting holds no memory.
 *
 * @example
 * const waiters = new Waiters()
 * await waiters.waitFor(lookup, 5_000) // elsewhere: waiters.wake(lookup)
 */
export class Waiters {
  readonly #byKey = new Map<string, Set<() => void>>()

  /**
   * Waits until `key` is woken, or `ms` have passed.
   *
   * @param key - what to wait on
   * @param ms - the longest wait (at least 1 ms)
   * @returns a promise that resolves either way (it never rejects)
   */
  waitFor(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#byKey.get(key)
      if (!set) this.#byKey.set(key, (set = new Set()))
      const waiters = set
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0) this.#byKey.delete(key)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      waiters.add(done)
    })
  }

  /** Wakes every caller waiting on `key`. */
  wake(key: string): void {
    for (const done of [...(this.#byKey.get(key) ?? [])]) done()
  }

  /** How many callers wait on `key`. */
  count(key: string): number {
    return this.#byKey.get(key)?.size ?? 0
  }
}
