/**
 * Duplicates blocked inside the object until the original finishes (seed
 * 003's PA_blockRequest): each waits on its lookup key until a commit or a
 * release wakes it, or its time is up.
 */
export class Waiters {
  readonly #byLookup = new Map<string, Set<() => void>>()

  /** Resolves when `lookup` is woken, or after `ms` (at least 1). */
  waitFor(lookup: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#byLookup.get(lookup)
      if (!set) this.#byLookup.set(lookup, (set = new Set()))
      const waiters = set
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0) this.#byLookup.delete(lookup)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      waiters.add(done)
    })
  }

  /** Wakes every caller waiting on `lookup`. */
  wake(lookup: string): void {
    for (const done of [...(this.#byLookup.get(lookup) ?? [])]) done()
  }

  /** How many callers wait on `lookup`. */
  count(lookup: string): number {
    return this.#byLookup.get(lookup)?.size ?? 0
  }
}
