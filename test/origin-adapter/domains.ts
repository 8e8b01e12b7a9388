import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { once, proxy, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import type { FarmOrigin } from '../farm.js'

/** Helpers of the tests of ordering domains through once() + proxy({ strategy: 'replicate' }). */

/** The farm's origins as proxy() lists them. */
export const list = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))
/** The stable area that holds a domain. */
export const stubOf = (domain: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${domain}`))
/** A domain's head, log and replicas, as the status page shows them. */
export const stateOf = async (domain: string) => (await (stubOf(domain) as unknown as StableAreaApi).domains()).find((d) => d.domain === domain)
/** The records of a domain's object, by sequence. */
export const recordsOf = (domain: string) =>
  runInDurableObject(stubOf(domain), (_o, s) => s.storage.sql.exec('SELECT state, status, sequence, request_id, lease_until FROM records ORDER BY sequence').toArray())
/** Runs one SQL statement in a domain's object (to expire a lease, or to skip a backoff). */
export const sql = (domain: string, statement: string) => runInDurableObject(stubOf(domain), (_o, s) => void s.storage.sql.exec(statement))

/** A bank whose accounts are ordering domains replicated to `origins`; returns a deposit function. */
export function bank(origins: { name: string; url: string }[], options: Partial<ProxyOptions> = {}, ns?: typeof env.ONCE) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]!, ...(ns ? { namespace: () => ns } : {}) }))
  app.post('/accounts/*', proxy({ origins, strategy: 'replicate', timeoutMs: 1000, deadlineMs: 3000, ...options }))
  return (account: string, key: string, amount = 1, headers: Record<string, string> = {}) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ amount }) }, env)
}

/** The stable area, with the Worker's commits failing (the object briefly unreachable for them); everything else passes. */
export function failingCommits() {
  let failing = true
  let tries = 0
  const ns = {
    idFromName: (name: string) => env.ONCE.idFromName(name),
    get: (id: DurableObjectId) => {
      const real = env.ONCE.get(id) as unknown as StableAreaApi
      return new Proxy(real, {
        get(target, prop) {
          if (prop !== 'commit') return Reflect.get(target, prop)
          return async (r: Parameters<StableAreaApi['commit']>[0]) => {
            tries++
            if (failing) throw new Error('Network connection lost.')
            return real.commit(r)
          }
        },
      })
    },
  } as unknown as typeof env.ONCE
  return { ns, heal: () => void (failing = false), tries: () => tries }
}


/** The runtime's fetch, as it was before any test wrapped it. */
export const realFetch = globalThis.fetch

/** Puts the runtime's fetch back (call it in `afterEach` of a file that wraps it). */
export function restoreFetch(): void {
  globalThis.fetch = realFetch
}

/**
 * Wraps fetch for requests to `urls` (not the origins' control routes), to give answers the farm cannot: a
 * Retry-After, a pruned record, a WAF page, an app's returned 500.
 */
export function wrapFetch(urls: string[], wrap: (request: Request, send: () => Promise<Response>) => Promise<Response>): void {
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    if (!urls.some((u) => request.url.startsWith(u)) || new URL(request.url).pathname.startsWith('/__origin')) return realFetch(request)
    return wrap(request, () => realFetch(request))
  }) as typeof fetch
}
