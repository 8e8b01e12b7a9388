import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type RunningOrigin } from '../../examples/origin/server.js'
import { deposit, E2E_SIGNING_SECRET, recordOf, startGateway, type Gateway } from './helpers/gateway.js'
import { pollUntil } from './helpers/poll.js'

/**
 * Relays under `wrangler dev` (DESIGN §4, issue 8): a write `once()` +
 * `proxy()` forwarded to a real origin (node:sqlite, onceReceiver) is in
 * flight at the origin when the whole runtime is killed with SIGKILL; the
 * relay stored with the admit survives on the persisted state, and after a
 * restart it is finished exactly once, by the stable area's alarm or by the
 * client's retry.
 */
let origin: RunningOrigin
let gw: Gateway
const run = Date.now().toString(36)

beforeAll(async () => {
  origin = await startOrigin({ name: 'eu', secrets: { ONCE_SIGNING_SECRET: E2E_SIGNING_SECRET } })
  gw = await startGateway({ eu: origin.url })
})

afterAll(async () => {
  await gw?.close()
  await origin?.close()
})

/** Sends a deposit that hangs at the origin, and waits until the origin holds it; returns its request id and the lost client call. */
async function writeInFlight(account: string, key: string) {
  origin.setFaults({ hang: true })
  const lost = deposit(gw.url, account, key, 100).then(
    (res) => res.status,
    (err: unknown) => err,
  )
  const requestId = await pollUntil('the admit', async () => (await recordOf(gw.url, key)).record?.requestId)
  await pollUntil('the write to reach the origin', async () => ((await origin.stats()).byRequestId[requestId]?.received === 1 ? true : undefined), {
    describe: () => origin.stats(),
  })
  expect((await recordOf(gw.url, key)).record).toMatchObject({ state: 'in_flight', attempt: 1 })
  return { requestId, lost }
}

describe('wrangler dev killed with SIGKILL while a proxied write is in flight at the origin', () => {
  it('after the restart the alarm resends it with the same request id, the origin applies it once, and the client’s retry replays it', async () => {
    const account = `al-${run}`
    const key = `alarm-${run}`
    const { requestId, lost } = await writeInFlight(account, key)

    await gw.kill()
    expect(await lost).toBeInstanceOf(Error) // the client never got an answer
    // The hung request goes on at the origin with its caller gone: it may be applied or not; the origin dedupes by request id.
    origin.setFaults({ hang: false })
    await gw.restart()

    // No client retry: the stable area's alarm (due at the dead Worker's lease end) resends the relay and commits the answer.
    const stats = await pollUntil(
      'the alarm’s resend applied once',
      async () => {
        const s = await origin.stats()
        const seen = s.byRequestId[requestId]
        return seen && seen.received >= 2 && seen.applied === 1 ? s : undefined
      },
      { describe: () => origin.stats() },
    )
    expect(Object.keys(stats.byRequestId)).toEqual([requestId]) // one logical request, one id, however often it was sent
    const committed = await pollUntil('the alarm’s commit', async () => {
      const { record } = await recordOf(gw.url, key)
      return record?.state === 'committed' ? record : undefined
    })
    expect(committed).toMatchObject({ requestId, status: 201, attempt: 2 }) // attempt 2: the alarm took the dead Worker's key over

    // The client comes back: the committed answer, without reaching the origin again.
    const retry = await deposit(gw.url, account, key, 100)
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(retry.headers.get('once-origin')).toBe('eu')
    const body = await retry.text()
    expect(JSON.parse(body)).toEqual({ id: account, balance: 100 })
    const again = await deposit(gw.url, account, key, 100)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(body) // byte for byte

    const after = await origin.stats()
    expect(after.byRequestId[requestId]).toMatchObject({ received: 2, applied: 1 }) // the hung send and the alarm's resend
    expect(after.balances[account]).toBe(100)
    const read = await fetch(`${gw.url}/accounts/${account}`)
    expect(await read.json()).toEqual({ id: account, balance: 100 })
  })

  it('a client retry that comes before the alarm’s next resend takes the relay over: same request id, next attempt, applied once', async () => {
    const account = `bo-${run}`
    const key = `takeover-${run}`
    const { requestId, lost } = await writeInFlight(account, key)

    await gw.kill()
    expect(await lost).toBeInstanceOf(Error)
    // The origin goes down: the hung request is reset unapplied, and so is the alarm's first resend after the restart.
    origin.setFaults({ down: true, hang: false })
    await gw.restart()

    // The alarm took the dead Worker's key (attempt 2), found every origin down, and gave the key back until its next round (2 s later).
    await pollUntil(
      'the alarm’s failed resend round',
      async () => {
        const { record, now } = await recordOf(gw.url, key)
        return record?.state === 'in_flight' && record.attempt === 2 && (record.leaseUntil ?? 0) <= now ? record : undefined
      },
      { describe: () => recordOf(gw.url, key) },
    )
    const before = (await origin.stats()).byRequestId[requestId]
    expect(before?.received).toBeGreaterThanOrEqual(2)
    expect(before?.applied).toBe(0)

    // The origin is back and the client retries first: it takes the relay over and sends it under the same request id.
    origin.setFaults({ down: false })
    const retry = await deposit(gw.url, account, key, 100)
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBeNull() // this attempt ran the relay, it did not replay the alarm's work
    const timing = retry.headers.get('server-timing') ?? ''
    const sent = /#(\d+) 201/.exec(timing)
    // Once-Attempt counts on from the alarm's recorded sends; the dead Worker's own send was never recorded, so
    // this attempt's number equals the sends the origin saw before it (the dead Worker's one + the alarm's).
    expect(Number(sent?.[1])).toBe(before?.received)
    const body = await retry.text()
    expect(JSON.parse(body)).toEqual({ id: account, balance: 100 })

    expect((await recordOf(gw.url, key)).record).toMatchObject({ state: 'committed', requestId, attempt: 3, status: 201 })
    const replay = await deposit(gw.url, account, key, 100)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(body)
    const after = await origin.stats()
    expect(after.byRequestId[requestId]).toMatchObject({ received: (before?.received ?? 0) + 1, applied: 1 })
    expect(after.balances[account]).toBe(100)
  })
})
