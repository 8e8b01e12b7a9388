/**
 * End to end, the OnceObject bank (examples/bank-object) under `wrangler dev`,
 * killed with SIGKILL in the middle of a burst of deposits: every deposit's
 * effect and its record are both there or both gone, so once every client
 * has retried to a final answer each deposit is in the balance exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startWranglerDev, type DevServer } from '../../scripts/wrangler-dev.js'

const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-e2e-object-'))
let dev: DevServer | undefined
const start = async () => (dev = await startWranglerDev({ config: 'examples/bank-object/wrangler.toml', persistTo }))

afterAll(async () => {
  await dev?.stop('SIGKILL')
  rmSync(persistTo, { recursive: true, force: true })
})

const deposit = (base: string, account: string, key: string) =>
  fetch(`${base}/accounts/${account}/deposits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
    body: JSON.stringify({ amount: 100 }),
    signal: AbortSignal.timeout(10_000),
  })

describe('wrangler dev with OnceObject accounts, killed mid-burst', () => {
  it('applies every deposit exactly once after the restart and the retries', async () => {
    let base = (await start()).url
    const accounts = ['a', 'b', 'c'].map((x) => `${x}-${Date.now()}`)
    // Six clients, each sending its deposits one after another: some are answered, some in flight at the kill.
    const keys = Array.from({ length: 150 }, (_, i) => ({ account: accounts[i % 3]!, key: `k-${i}-${Date.now()}` }))
    const statuses: number[] = Array(keys.length).fill(0)
    let answered = 0
    const burst = Promise.all(
      Array.from({ length: 6 }, async (_, client) => {
        for (let i = client; i < keys.length; i += 6) {
          const { account, key } = keys[i]!
          const res = await deposit(base, account, key).catch(() => undefined)
          if (!res) continue
          statuses[i] = res.status
          answered++
          await res.body?.cancel()
        }
      }),
    )
    for (let i = 0; i < 2000 && answered < keys.length / 3; i++) await new Promise((r) => setTimeout(r, 5))
    await dev!.stop('SIGKILL')
    await burst
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(0) // some deposits were answered before the kill,
    expect(statuses.filter((s) => s === 0).length).toBeGreaterThan(0) // and the others never got an answer

    base = (await start()).url
    // Every client retries with its key until it gets the final answer.
    for (const { account, key } of keys) {
      let res: Response | undefined
      for (let t = 0; t < 50; t++) {
        res = await deposit(base, account, key).catch(() => undefined)
        if (res?.status === 201) break
        await res?.body?.cancel()
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(res?.status).toBe(201)
      await res?.body?.cancel()
    }
    for (const account of accounts) {
      const { balance } = (await (await fetch(`${base}/accounts/${account}`)).json()) as { balance: number }
      expect(balance).toBe(100 * keys.filter((k) => k.account === account).length)
    }
  })
})
