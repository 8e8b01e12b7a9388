/** How many domains a {@link KnownNext} remembers; past it the oldest is forgotten (its requests take the domain's lock again). */
const MAX_DOMAINS = 10_000

/**
 * What the receivers on one store have seen of each domain's next expected
 * sequence, in this process: a lower bound (a domain's next sequence only
 * grows). A request for a sequence below it was applied already, so it can
 * never run again: it needs no turn in its domain, and is answered from the
 * store (its stored answer) while a later request of its domain runs.
 *
 * @example
 * const known = new KnownNext()
 * known.raise('acct-1', 3)
 * known.behind('acct-1', 2) // true
 */
export class KnownNext {
  readonly #next = new Map<string, number>()

  /** Whether `sequence` of `domain` is known to be applied (below the domain's next). */
  behind(domain: string, sequence: number): boolean {
    return sequence < (this.#next.get(domain) ?? 1)
  }

  /** Records that `domain` has applied everything before `next`. */
  raise(domain: string, next: number): void {
    const known = this.#next.get(domain)
    if (known !== undefined && known >= next) return
    this.#next.delete(domain)
    this.#next.set(domain, next)
    if (this.#next.size > MAX_DOMAINS) this.#next.delete(this.#next.keys().next().value as string)
  }
}
