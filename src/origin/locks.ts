/**
 * Hands back a lock. (Not "release": in hono-once a record is released,
 * its key freed for a retry; a lock is unlocked.)
 *
 * @example
 * const unlock: Unlock = () => {}
 */
export type Unlock = () => void

/**
 * In-process FIFO locks by key, with a bounded wait. The receiver uses them
 * so that a repeat of a running request waits for it, and so that one
 * domain's requests are applied one at a time; an idle key holds no memory.
 *
 * @example
 * const locks = new KeyedLock()
 * const unlock = await locks.acquire('domain:a1', 5000)
 * if (!unlock) return busy()
 * try { await applyIt() } finally { unlock() }
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>()

  /**
   * Waits for `key` to be free, then holds it.
   *
   * @param key - what to lock
   * @param timeoutMs - longest wait
   * @returns the unlock function, or undefined when the wait timed out (nothing is held then)
   */
  async acquire(key: string, timeoutMs: number): Promise<Unlock | undefined> {
    const prev = this.#tails.get(key)
    let open!: () => void
    const held = new Promise<void>((resolve) => (open = resolve))
    const tail = prev ? prev.then(() => held) : held
    this.#tails.set(key, tail)
    const unlock: Unlock = () => {
      open()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
    if (!prev || (await settlesWithin(prev, timeoutMs))) return unlock
    // Gave up: pass the turn on as soon as it comes.
    void prev.then(unlock)
    return undefined
  }
}

/**
 * Runs async functions one at a time, in call order: a single SQLite
 * connection can hold one transaction, so every transaction on it must wait
 * for the previous one to finish.
 *
 * @example
 * const mutex = new Mutex()
 * await mutex.run(async () => { db.exec('BEGIN'); await work(); db.exec('COMMIT') })
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve()

  /**
   * Runs `fn` after every earlier call has settled, waiting at most
   * `timeoutMs` for its turn (then it rejects with `timeoutError()` and `fn`
   * never runs; the order of the others is kept).
   *
   * @param fn - the critical section
   * @param timeoutMs - longest wait for the turn; default unbounded
   * @param timeoutError - the error of a wait that timed out
   * @returns what `fn` returns
   */
  run<T>(fn: () => T | Promise<T>, timeoutMs?: number, timeoutError: () => Error = () => new Error('mutex wait timed out')): Promise<T> {
    // One state, changed synchronously by whichever comes first: the turn or the timeout.
    let state: 'waiting' | 'running' | 'gave-up' = 'waiting'
    let timer: ReturnType<typeof setTimeout> | undefined
    const result = this.#tail.then(() => {
      if (timer !== undefined) clearTimeout(timer)
      if (state === 'gave-up') throw timeoutError()
      state = 'running'
      return fn()
    })
    this.#tail = result.catch(() => undefined)
    if (timeoutMs === undefined) return result
    return new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => {
        if (state !== 'waiting') return
        state = 'gave-up'
        reject(timeoutError())
      }, timeoutMs)
      result.then(resolve, (err: unknown) => {
        if (state !== 'gave-up') reject(err)
      })
    })
  }
}

function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false))),
  ]).finally(() => timer !== undefined && clearTimeout(timer))
}
