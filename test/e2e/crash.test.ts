import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startWranglerDev, type DevServer } from '../../scripts/wrangler-dev.js'

const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-e2e-'))
let dev: DevServer | undefined
const start = async () => (dev = await startWranglerDev({ config: 'test/e2e/fixtures/wrangler.toml', persistTo }))

afterAll(async () => {
  await dev?.stop('SIGKILL')
  rmSync(persistTo, { recursive: true, force: true })
})

const deposit = (base: string, account: string, key: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/accounts/${account}/deposits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"`, ...headers },
    body: JSON.stringify({ amount: 100 }),
    signal: AbortSignal.timeout(10_000),
  })

const balance = async (base: string, account: string) => ((await (await fetch(`${base}/accounts/${account}`)).json()) as { balance: number }).balance

/** Bounded polling: retries `request` until `done` accepts its status. */
async function poll(request: () => Promise<Response>, done: (status: number) => boolean, tries = 100): Promise<Response> {
  for (let i = 0; i < tries; i++) {
    const res = await request()
    if (done(res.status)) return res
    await res.body?.cancel()
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('never reached the expected status')
}

describe('wrangler dev, killed with SIGKILL between admit and commit', () => {
  it('keeps committed replies and the admission across the crash; after the lease one retry applies the deposit once', async () => {
    let base = (await start()).url
    const account = `acct-${Date.now()}`
    const done = `done-${Date.now()}`
    const stuck = `stuck-${Date.now()}`

    expect((await deposit(base, account, done)).status).toBe(201) // committed before the crash

    // The Worker admits `stuck`, then hangs; a duplicate sees it in flight.
    const hung = deposit(base, account, stuck, { 'x-hang': '1' }).catch((e: unknown) => e)
    await poll(() => deposit(base, account, stuck), (s) => s === 409)

    await dev!.stop('SIGKILL') // workerd, the Worker and the Durable Objects die: no release, no commit
    expect(await hung).toBeInstanceOf(Error) // the client never got an answer
    base = (await start()).url

    // The committed reply survived the restart, byte for byte.
    const replay = await deposit(base, account, done)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.json()).toEqual({ balance: 100 })

    // The client retries `stuck`: 409 while the dead Worker's lease lasts, then one retry runs it.
    const retried = await poll(() => deposit(base, account, stuck), (s) => s !== 409)
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
    expect((await deposit(base, account, stuck)).headers.get('idempotent-replayed')).toBe('true')
    expect(await balance(base, account)).toBe(200) // `done` once + `stuck` once
  })
})
