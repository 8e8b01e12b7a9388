import { describe, expect, it } from 'vitest'
import type { ApplyClaim, ApplyOutcome, ReceiverStore, StoredReply } from '../../src/origin/index.js'

/**
 * How a contract run reaches one store: a fresh store, a way for the work to
 * write one effect row through the store's transaction, and a count of the
 * committed effect rows of a request id.
 */
export interface StoreHarness<Tx> {
  make(): Promise<ReceiverStore<Tx>> | ReceiverStore<Tx>
  write(tx: Tx, requestId: string): void | Promise<void>
  effects(requestId: string): Promise<number> | number
}

const enc = new TextEncoder()
const reply = (text: string, status = 201): StoredReply => ({
  status,
  headers: [
    ['content-type', 'application/json'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ],
  body: enc.encode(text),
})
const uid = () => crypto.randomUUID()
const tick = (ms = 10) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The behaviour every {@link ReceiverStore} must share, run against one store
 * implementation: the same decisions, atomic records, safe races.
 *
 * @param name - shown in the test names
 * @param h - the store's harness
 */
export function storeContract<Tx>(name: string, h: StoreHarness<Tx>): void {
  describe(`${name}: the ReceiverStore contract`, () => {
    /** Work that writes one effect and answers `text`; counts its runs. */
    const effect = (text: string, status = 201) => {
      const runs = { n: 0 }
      const work = async (tx: Tx, requestId: string) => {
        runs.n++
        await h.write(tx, requestId)
        await tick(1)
        return reply(text, status)
      }
      return { runs, work }
    }
    const apply = (store: ReceiverStore<Tx>, claim: ApplyClaim, text = 'ok'): Promise<ApplyOutcome> => {
      const { work } = effect(text)
      return store.apply(claim, (tx) => work(tx, claim.requestId))
    }

    it('records an unordered request once; a repeat is a replay of the exact reply and does not run the work', async () => {
      const store = await h.make()
      const claim = { requestId: uid(), noop: false }
      const { runs, work } = effect('{"balance":5}')
      expect(await store.apply(claim, (tx) => work(tx, claim.requestId))).toEqual({ kind: 'applied' })
      const again = await store.apply(claim, (tx) => work(tx, claim.requestId))
      expect(again.kind).toBe('replay')
      if (again.kind !== 'replay') return
      expect(again.reply.status).toBe(201)
      expect(again.reply.headers).toEqual(reply('').headers)
      expect(new TextDecoder().decode(again.reply.body)).toBe('{"balance":5}')
      expect(runs.n).toBe(1)
      expect(await h.effects(claim.requestId)).toBe(1)
    })

    it('keeps binary and empty bodies exactly', async () => {
      const store = await h.make()
      const bytes = new Uint8Array([0, 255, 1, 254, 10, 13])
      const a = { requestId: uid(), noop: false }
      const b = { requestId: uid(), noop: false }
      await store.apply(a, async () => ({ status: 200, headers: [['content-type', 'application/octet-stream']], body: bytes }))
      await store.apply(b, async () => ({ status: 204, headers: [], body: new Uint8Array() }))
      const ra = await store.apply(a, async () => reply('no'))
      const rb = await store.apply(b, async () => reply('no'))
      expect(ra.kind === 'replay' && [...ra.reply.body]).toEqual([...bytes])
      expect(rb.kind === 'replay' && rb.reply.body.byteLength).toBe(0)
    })

    it('rolls back when the work answers nothing to record: no effect, no record, the retry runs', async () => {
      const store = await h.make()
      const claim = { requestId: uid(), domain: `d-${uid()}`, sequence: 1, noop: false }
      const outcome = await store.apply(claim, async (tx) => {
        await h.write(tx, claim.requestId)
        return undefined
      })
      expect(outcome).toEqual({ kind: 'rolled-back' })
      expect(await h.effects(claim.requestId)).toBe(0)
      expect(await store.nextSequence(claim.domain)).toBe(1)
      expect(await apply(store, claim)).toEqual({ kind: 'applied' })
      expect(await h.effects(claim.requestId)).toBe(1)
    })

    it('rolls back and rethrows when the work throws after writing', async () => {
      const store = await h.make()
      const claim = { requestId: uid(), domain: `d-${uid()}`, sequence: 1, noop: false }
      await expect(
        store.apply(claim, async (tx) => {
          await h.write(tx, claim.requestId)
          throw new Error('handler exploded')
        }),
      ).rejects.toThrow('handler exploded')
      expect(await h.effects(claim.requestId)).toBe(0)
      expect(await store.applied(claim.domain)).toEqual([])
      expect(await apply(store, claim)).toEqual({ kind: 'applied' })
    })

    it('applies a domain in sequence order: gaps, old sequences, conflicts and no-ops', async () => {
      const store = await h.make()
      const d = `d-${uid()}`
      const [r1, r2, r3, r4] = [uid(), uid(), uid(), uid()]
      expect(await apply(store, { requestId: r2, domain: d, sequence: 2, noop: false })).toEqual({ kind: 'gap', expected: 1 })
      expect(await apply(store, { requestId: r1, domain: d, sequence: 1, noop: false }, 'one')).toEqual({ kind: 'applied' })
      expect(await apply(store, { requestId: r2, domain: d, sequence: 2, noop: false })).toEqual({ kind: 'applied' })
      const old = await apply(store, { requestId: r1, domain: d, sequence: 1, noop: false })
      expect(old.kind === 'replay' && new TextDecoder().decode(old.reply.body)).toBe('one')
      expect((await apply(store, { requestId: uid(), domain: d, sequence: 1, noop: false })).kind).toBe('conflict')
      expect((await apply(store, { requestId: r1, domain: d, sequence: 3, noop: false })).kind).toBe('conflict')
      expect((await apply(store, { requestId: r1, noop: false })).kind).toBe('conflict')
      expect(await store.apply({ requestId: r3, domain: d, sequence: 3, noop: true }, async () => ({ status: 204, headers: [], body: new Uint8Array() }))).toEqual({
        kind: 'applied',
      })
      expect(await apply(store, { requestId: r4, domain: d, sequence: 5, noop: false })).toEqual({ kind: 'gap', expected: 4 })
      expect(await store.applied(d)).toEqual([
        { domain: d, sequence: 1, requestId: r1, noop: false },
        { domain: d, sequence: 2, requestId: r2, noop: false },
        { domain: d, sequence: 3, requestId: r3, noop: true },
      ])
      expect(await store.nextSequence(d)).toBe(4)
      expect((await store.nextSequences())[d]).toBe(4)
      expect((await store.applied()).filter((e) => e.domain === d)).toHaveLength(3)
      expect(await store.nextSequence(`never-${uid()}`)).toBe(1)
      expect(await h.effects(r3)).toBe(0)
    })

    it('lets only one of two concurrent applies of one request id commit; the other replays it', async () => {
      const store = await h.make()
      const claim = { requestId: uid(), noop: false }
      const a = effect('first')
      const b = effect('second')
      const outcomes = await Promise.all([store.apply(claim, (tx) => a.work(tx, claim.requestId)), store.apply(claim, (tx) => b.work(tx, claim.requestId))])
      expect(outcomes.map((o) => o.kind).sort()).toEqual(['applied', 'replay'])
      expect(await h.effects(claim.requestId)).toBe(1)
    })

    it('lets only one of two concurrent claims on one slot commit; the other is a conflict', async () => {
      const store = await h.make()
      const d = `d-${uid()}`
      const [x, y] = [uid(), uid()]
      const outcomes = await Promise.all([apply(store, { requestId: x, domain: d, sequence: 1, noop: false }), apply(store, { requestId: y, domain: d, sequence: 1, noop: false })])
      expect(outcomes.map((o) => o.kind).sort()).toEqual(['applied', 'conflict'])
      expect((await h.effects(x)) + (await h.effects(y))).toBe(1)
      expect(await store.nextSequence(d)).toBe(2)
    })

    it('prunes old records but keeps each domain’s next sequence; a pruned slot answers pruned', async () => {
      const store = await h.make()
      const d = `d-${uid()}`
      const [r1, r2] = [uid(), uid()]
      await apply(store, { requestId: r1, domain: d, sequence: 1, noop: false })
      await tick(5)
      const cutoff = Date.now()
      await tick(5)
      await apply(store, { requestId: r2, domain: d, sequence: 2, noop: false })
      expect(await store.prune(cutoff)).toBeGreaterThanOrEqual(1)
      expect(await store.nextSequence(d)).toBe(3)
      expect(await store.applied(d)).toEqual([{ domain: d, sequence: 2, requestId: r2, noop: false }])
      expect(await apply(store, { requestId: r1, domain: d, sequence: 1, noop: false })).toEqual({ kind: 'pruned', next: 3 })
      expect((await apply(store, { requestId: r2, domain: d, sequence: 2, noop: false })).kind).toBe('replay')
    })
  })
}
