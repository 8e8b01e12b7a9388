/**
 * Runs `work` over `items` with `workers` concurrent clients, each taking the
 * next item in order, and counts how many have started and finished (a chaos
 * test kills the runtime while writes are in flight: `started - finished`).
 *
 * @param items - what to do, in order
 * @param workers - concurrent clients
 * @param work - one item
 * @param onError - told of an item whose work threw; the client goes on
 * @returns live counters and the promise of the whole run
 * @example
 * const pool = runPool(writes, 12, runWrite, (w, err) => failures.push(`${w.key}: ${err}`))
 * await pool.done
 */
export function runPool<T>(items: T[], workers: number, work: (item: T) => Promise<void>, onError: (item: T, err: unknown) => void): { readonly started: number; readonly finished: number; done: Promise<void> } {
  const counts = { started: 0, finished: 0 }
  const done = Promise.all(
    Array.from({ length: workers }, async () => {
      while (counts.started < items.length) {
        const item = items[counts.started++]!
        try {
          await work(item)
        } catch (err) {
          onError(item, err)
        }
        counts.finished++
      }
    }),
  ).then(() => {})
  return {
    get started() {
      return counts.started
    },
    get finished() {
      return counts.finished
    },
    done,
  }
}
