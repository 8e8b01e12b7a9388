/**
 * What an OnceFetchError says, which apps log: the method, the origin and the path of the call, never its query
 * (`?access_token=…`), its fragment or credentials in the URL.
 */
import { describe, expect, it } from 'vitest'
import { createOnceFetch, OnceFetchError, RetryBudget } from '../../src/client/index.js'

const SECRET = 'SECRET-QUERY-TOKEN'
const target = () => `https://user:pw-${SECRET}@h-${crypto.randomUUID().slice(0, 8)}.test/reports/q1?access_token=${SECRET}&x=1#frag-${SECRET}`
const failing = (options: Parameters<typeof createOnceFetch>[0]) => createOnceFetch({ budget: new RetryBudget(), retries: 0, ...options })

describe('OnceFetchError messages', () => {
  it.each([
    ['a network error', () => failing({ fetch: () => Promise.reject(new TypeError('Network connection lost.')) }), {}, 'network', /^POST https:\/\/h-[0-9a-f]+\.test\/reports\/q1 failed \(1 attempts\)$/],
    ['a timeout', () => failing({ timeoutMs: 5, fetch: () => new Promise(() => {}) }), {}, 'timeout', /^POST https:\/\/h-[0-9a-f]+\.test\/reports\/q1 timed out after 5 ms/],
    ['an abort', () => failing({ fetch: () => new Promise(() => {}) }), { signal: AbortSignal.timeout(5) }, 'aborted', /^POST https:\/\/h-[0-9a-f]+\.test\/reports\/q1 aborted after [01] attempts$/],
    ['a deadline', () => failing({ deadlineMs: 5, fetch: () => new Promise(() => {}) }), {}, 'deadline', /^POST https:\/\/h-[0-9a-f]+\.test\/reports\/q1: deadline of 5 ms passed/],
  ] as const)('%s: origin and path, without the query, the fragment or the URL credentials', async (_name, make, init, reason, message) => {
    const err = await make()(target(), { method: 'POST', body: '{}', ...init }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect((err as OnceFetchError).reason).toBe(reason)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toContain(SECRET)
  })
})
