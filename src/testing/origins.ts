/**
 * An origin in the test's own process: any `fetch` handler (a Hono app with `onceReceiver()`, say) given to
 * `proxy()` as a `fetcher`, that the test can take down, slow down, or make drop its answer after applying.
 *
 * @module
 */
/** What `proxy()` takes as an origin's `fetcher` (a service binding, or any object with `fetch`). */
export interface OriginFetcher {
  fetch(request: Request): Promise<Response>
}

/** What the origin does to the next requests. */
export interface OriginFaults {
  /** Refuse every request, as a host that is down: the fetch rejects (a network error), nothing is applied. */
  down: boolean
  /** Wait this long before handling each request (aborted with the request's signal). */
  delayMs: number
  /** Apply the next `n` requests, then lose their answers (the fetch rejects, as a connection cut after the work). */
  dropAfterApply: number
}

/** An in-process origin: its name and fetcher for `proxy({ origins })`, its counters and its faults. */
export interface TestOrigin {
  name: string
  fetcher: OriginFetcher
  /** `{ name, fetcher }`: what `proxy({ origins })` takes. */
  origin: { name: string; fetcher: OriginFetcher }
  /** Requests that reached the handler. */
  readonly handled: number
  /** Requests refused while down. */
  readonly refused: number
  /** Takes the origin down (requests reject) or brings it back. */
  down(): void
  up(): void
  /** Delays each request by `ms` (0: no delay). */
  slow(ms: number): void
  /** The next `n` requests run, then their answers are lost. */
  dropAnswers(n?: number): void
  /** The faults now in force. */
  faults(): Readonly<OriginFaults>
}

/** The handler an origin runs: `app.fetch` of a Hono app, or any function from Request to Response. */
export type OriginHandler = (request: Request) => Response | Promise<Response>

/**
 * Wraps `handler` as an origin `proxy()` can dispatch to, with faults the test controls.
 *
 * @param name - the origin's name in `proxy({ origins })`
 * @param handler - the origin's code, e.g. `originApp.fetch` (with `onceReceiver()` on its routes)
 * @returns the origin
 * @example
 * const eu = testOrigin('eu', (req) => originApp.fetch(req))
 * const app = new Hono().post('/pay', once(), proxy({ origins: [eu.origin] }))
 * eu.down() // the next dispatch fails over, or answers 502
 */
export function testOrigin(name: string, handler: OriginHandler): TestOrigin {
  const faults: OriginFaults = { down: false, delayMs: 0, dropAfterApply: 0 }
  let handled = 0
  let refused = 0
  const fetcher: OriginFetcher = {
    async fetch(request: Request): Promise<Response> {
      if (faults.down) {
        refused++
        throw new TypeError(`origin ${name} is down (testOrigin)`)
      }
      if (faults.delayMs > 0) await delay(faults.delayMs, request.signal)
      handled++
      const response = await handler(request)
      if (faults.dropAfterApply > 0) {
        faults.dropAfterApply--
        await response.body?.cancel()
        throw new TypeError(`origin ${name} lost its answer after applying (testOrigin)`)
      }
      return response
    },
  }
  return {
    name,
    fetcher,
    origin: { name, fetcher },
    get handled() {
      return handled
    },
    get refused() {
      return refused
    },
    down: () => void (faults.down = true),
    up: () => void (faults.down = false),
    slow: (ms: number) => {
      if (!(ms >= 0)) throw new RangeError(`testOrigin(${name}).slow: ms must be >= 0, got ${ms}`)
      faults.delayMs = ms
    },
    dropAnswers: (n = 1) => void (faults.dropAfterApply = n),
    faults: () => ({ ...faults }),
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true })
  })
}
