import { describe, expect, it, vi } from 'vitest'
import { commitsUnderControl } from '../commits-under-control.js'
import { bank, newKey, recordOf } from '../helpers.js'

/**
 * Review s33 (answer first) #1: the lease stopped being renewed at maxRunMs whatever was still on its way, so a live
 * Worker whose final commit was slow lost its key to a duplicate, which ran the handler again (in both modes). A
 * final commit on its way now keeps its lease renewed until it lands (Admission.startRenewing, COMMIT_RENEW_MS).
 */
describe('a final commit that outlives maxRunMs keeps its lease (review s33 answer-first #1)', () => {
  it('the live Worker keeps its lease while its answered-first commit is on its way (no second effect)', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const control = commitsUnderControl()
    // maxRunMs 300: the handler answers well within it; leaseMs 1000 (the least allowed).
    const { post, effects } = bank({ namespace: () => control.ns, replayCache: false, leaseMs: 1000, maxRunMs: 300, inFlight: 'reject' }, { context: true })
    const key = newKey()
    control.set('hold') // the first Worker's commit is slow (held), the Worker alive
    const first = await post(key)
    expect(first.status).toBe(201) // answered first
    await control.sent()
    // Well past maxRunMs and past one lease: the live Worker's commit is still on its way.
    await scheduler.wait(1600)
    const row = await recordOf(key)
    control.set('pass')
    const duplicate = await post(key)
    // The doc's promise: the lease lives while the commit is on its way, so the duplicate is told 409 (in flight).
    expect({ leaseHeldNow: Number(row?.lease_until) > Date.now() - 100, duplicate: duplicate.status, effects: effects.get(key) }).toEqual({
      leaseHeldNow: true,
      duplicate: 409,
      effects: 1,
    })
    control.open()
    error.mockRestore()
  })
})

describe('the same, committing first (answerFirst: false)', () => {
  it('a live Worker whose commit is slow past maxRunMs keeps its key: no duplicate runs the handler again', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const control = commitsUnderControl()
    const { post, effects } = bank({ namespace: () => control.ns, replayCache: false, leaseMs: 1000, maxRunMs: 300, inFlight: 'reject', answerFirst: false }, { context: true })
    const key = newKey()
    control.set('hold')
    const first = post(key) // its commit held: not answered yet
    await control.sent()
    await scheduler.wait(1600)
    control.set('pass')
    const duplicate = post(key)
    for (let i = 0; i < 100 && (effects.get(key) ?? 0) < 2; i++) await scheduler.wait(5)
    control.open()
    // The handler returned within maxRunMs: its commit, once sent, is not cut short; the client gets its reply, stored.
    expect({ first: (await first).status, duplicate: (await duplicate).status, effects: effects.get(key) }).toEqual({ first: 201, duplicate: 409, effects: 1 })
    const replay = await post(key)
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true'])
    error.mockRestore()
    warn.mockRestore()
  })
})
