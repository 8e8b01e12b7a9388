import { describe, expect, it } from 'vitest'
import { commitsUnderControl, watch } from '../commits-under-control.js'
import { bank, expireLeases, newKey, recordOf, until } from '../helpers.js'

/**
 * A handler of the app's own, on Workers (an execution context): its final reply is answered as soon as it is read,
 * and its commit lands right after, in the background (`answerFirst`, the default; CommitPoint.finish). These tests
 * hold or drop that commit to show what a client and its duplicates see meanwhile.
 */

/** The bank behind once(), its commits under the test's control, each request with an execution context. */
function scene(options: Parameters<typeof bank>[0] = {}) {
  const control = commitsUnderControl()
  const teller = bank({ namespace: () => control.ns, replayCache: false, leaseMs: 3000, ...options }, { context: true })
  return { control, ...teller, key: newKey() }
}

/** Sends `key`'s deposit with its commit held; resolves once the answer has arrived before that commit landed. */
async function answeredWhileHeld({ control, post, key }: ReturnType<typeof scene>): Promise<Response> {
  control.set('hold')
  const pending = post(key)
  const watched = watch(Promise.resolve(pending))
  await control.sent()
  for (let i = 0; i < 100 && !watched.settled(); i++) await scheduler.wait(5)
  expect(watched.settled()).toBe(true) // answered while its commit is held
  expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
  return pending
}

describe('a handler of its own answers first, then commits (answerFirst)', () => {
  it('the client has the reply while the commit is held; a duplicate waits for it and replays the same bytes; one effect', async () => {
    const s = scene()
    const first = await answeredWhileHeld(s)
    expect(first.status).toBe(201)
    const duplicate = s.post(s.key)
    await until(s.key, (info) => (info?.waiters ?? 0) >= 1)
    s.control.open()
    const replay = await duplicate
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(await first.text())
    expect(s.effects.get(s.key)).toBe(1)
    expect(await recordOf(s.key)).toMatchObject({ state: 'committed', status: 201 })
  })

  it("inFlight: 'reject': a duplicate in the moment before the commit lands gets 409 with Retry-After, then replays", async () => {
    const s = scene({ inFlight: 'reject' })
    await answeredWhileHeld(s)
    const early = await s.post(s.key)
    expect(early.status).toBe(409)
    expect(early.headers.get('retry-after')).not.toBeNull()
    s.control.open()
    await s.settled()
    const replay = await s.post(s.key)
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true'])
    expect(s.effects.get(s.key)).toBe(1)
  })

  it('a non-final answer (503) releases the key before it is answered: the retry runs at once', async () => {
    const s = scene({ inFlight: 'reject' })
    const failed = await s.post(s.key, { amount: 100 }, { 'x-mode': 'fail' })
    expect(failed.status).toBe(503)
    expect(await recordOf(s.key)).toMatchObject({ state: 'released' }) // given back before the 503 was answered
    expect((await s.post(s.key)).status).toBe(201)
    await s.settled()
    expect(s.effects.get(s.key)).toBe(1)
  })

  it('a Worker that dies after answering (its commit never sent) leaves what one that dies before answering leaves: the key held for its lease, then taken over', async () => {
    const s = scene({ inFlight: 'reject' })
    s.control.set('drop')
    const first = s.post(s.key)
    await s.control.sent()
    expect((await first).status).toBe(201) // the client has its answer
    s.control.set('pass')
    expect((await s.post(s.key)).status).toBe(409) // held while the dead Worker's lease lasts
    await expireLeases(s.key)
    // As after any Worker that died between the effect and its commit: the retry runs the handler again, with the same
    // request id (attempt 2). Effects that must never repeat belong in an OnceObject or behind an origin that dedupes.
    const retry = await s.post(s.key)
    expect(retry.status).toBe(201)
    expect(((await retry.json()) as { requestId: string }).requestId).toBe(((await (await first).json()) as { requestId: string }).requestId)
    await until(s.key, (info) => info?.state === 'committed')
    expect(await recordOf(s.key)).toMatchObject({ state: 'committed', attempt: 2 })
  })
})
