import { env } from 'cloudflare:workers'
import { expect } from 'vitest'
import type { StableAreaApi } from '../src/durable/types.js'

/**
 * Tests of answering first (CommitPoint.finish): a stable area whose commits the test passes, holds or drops, and a
 * watch on whether an answer has arrived.
 */

export type CommitMode = 'pass' | 'hold' | 'late' | 'drop'

/**
 * The stable area with its commits under the test's control: passed, held until `open()` (`hold`: not sent yet; `late`:
 * landed, its answer held), or dropped with the renewals (the Worker died).
 */
export function commitsUnderControl() {
  let mode: CommitMode = 'pass'
  let open = () => {}
  let gate = Promise.resolve()
  let calls = 0
  let renewals = 0
  const ns = {
    idFromName: (name: string) => env.ONCE.idFromName(name),
    get: (id: DurableObjectId) => {
      const real = env.ONCE.get(id) as unknown as StableAreaApi
      const chosen = mode // each request's stub is made at its admit: its commit follows the mode of that moment
      return new Proxy(real, {
        get(target, prop) {
          // A Worker that died renews nothing either (a live one renews its lease until the commit lands).
          if (prop === 'renew') {
            if (chosen === 'drop') return () => new Promise(() => {})
            return (...a: Parameters<StableAreaApi['renew']>) => (renewals++, real.renew(...a))
          }
          if (prop !== 'commit') return Reflect.get(target, prop)
          return async (r: Parameters<StableAreaApi['commit']>[0]) => {
            calls++
            if (chosen === 'drop') return new Promise(() => {}) // never sent, never answered
            if (chosen === 'late') {
              const landed = await real.commit(r)
              await gate
              return landed
            }
            await gate
            return real.commit(r)
          }
        },
      })
    },
  } as unknown as typeof env.ONCE
  return {
    ns,
    set(next: CommitMode) {
      mode = next
      if (next === 'hold' || next === 'late') gate = new Promise((r) => (open = r))
    },
    open: () => open(),
    calls: () => calls,
    renewals: () => renewals,
    /** Bounded wait until the commit was sent (it goes out in the turn after the answer). */
    async sent(n = 1) {
      for (let i = 0; i < 500 && calls < n; i++) await scheduler.wait(2)
      expect(calls).toBe(n)
    },
  }
}

/** Tracks whether `p` has settled. */
export function watch(p: Promise<unknown>): { settled: () => boolean } {
  let done = false
  p.then(
    () => (done = true),
    () => (done = true),
  )
  return { settled: () => done }
}
