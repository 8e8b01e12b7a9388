import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bank, crashedWorker, expireLeases, newKey } from '../helpers.js'

/** One thing that happens to a key: a client request (which may fail or throw) or a Worker that admits it and dies. */
const step = fc.record({
  key: fc.nat({ max: 3 }),
  action: fc.constantFrom('ok', 'ok', 'ok', 'fail', 'throw', 'crash'),
})

/** Batches run concurrently; between batches time may pass (leases of dead Workers run out). */
const history = fc.array(fc.record({ steps: fc.array(step, { minLength: 1, maxLength: 8 }), leasesRunOut: fc.boolean() }), {
  minLength: 1,
  maxLength: 6,
})

describe('exactly once, over random interleavings (fast-check)', () => {
  // With an execution context (as on Workers) a reply is answered first and committed right after; time passing
  // (leases running out) comes after live Workers' background commits, which take milliseconds against a lease of seconds.
  it.each([
    ['committing before it answers (no execution context)', false],
    ['answering first, as on Workers', true],
  ])('every key takes effect at most once, all its answers agree, and once healthy exactly once: %s', async (_name, context) => {
    await fc.assert(
      fc.asyncProperty(history, async (batches) => {
        const { post, effects, settled } = bank({ inFlight: 'reject' }, { context })
        const keys = Array.from({ length: 4 }, newKey)
        const answers = new Map<string, Set<string>>()
        const record = async (key: string, res: Response) => {
          if (res.status !== 201) return
          const seen = answers.get(key) ?? new Set()
          seen.add(await res.text())
          answers.set(key, seen)
        }

        for (const { steps, leasesRunOut } of batches) {
          await Promise.all(
            steps.map(async ({ key: i, action }) => {
              const key = keys[i]!
              if (action === 'crash') return void (await crashedWorker(key))
              const res = await post(key, { amount: 100 }, { 'x-mode': action })
              expect([201, 409, 500, 503]).toContain(res.status)
              await record(key, res)
            }),
          )
          for (const key of keys) expect(effects.get(key) ?? 0).toBeLessThanOrEqual(1)
          await settled()
          if (leasesRunOut) for (const key of keys) await expireLeases(key)
        }

        // Healing: dead Workers' leases run out, then every client retries until it gets its answer.
        for (const key of keys) {
          await expireLeases(key)
          const res = await post(key)
          await settled()
          expect(res.status).toBe(201)
          await record(key, res)
          expect(effects.get(key)).toBe(1)
          expect(answers.get(key)?.size).toBe(1)
        }
      }),
      { numRuns: 40 },
    )
  })
})
