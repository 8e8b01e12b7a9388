import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, recordsOf, restoreFetch, sql, stateOf, stubOf, wrapFetch } from './domains.js'

/**
 * (Review s30b.) an unmarked 400 (411, 413, 414, 415, 431) where the receiver's word was due now counts as a
 * refusal for good. A proxy in front of every replica that answers 400 to every request for a while (a
 * misconfiguration: "The plain HTTP request was sent to HTTPS port", a Host check) is an outage, not the request's
 * bytes: the head of each ordering domain is abandoned (request-abandoned, retryable: false) once the window passes,
 * one good request per domain per poisonAfterMs, against "an outage of every replica, however long, never kills a
 * good request" (replication.md).
 */

afterEach(restoreFetch)

describe('a proxy in front of every replica answers 400 to every request for a while', () => {
  it('kills no good request: once the proxy is fixed, the write is applied', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'])
    let broken = false
    wrapFetch(list(origins).map((o) => o.url), async (_request, send) =>
      broken ? new Response('<html><h1>400 Bad Request</h1>The plain HTTP request was sent to HTTPS port</html>', { status: 400, headers: { 'content-type': 'text/html' } }) : send(),
    )
    const deposit = bank(list(origins), { poisonAfterMs: 60_000 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    broken = true
    const key = newKey()
    expect((await deposit(account, key, 5)).status).toBe(502)
    // Alarm rounds over more than poisonAfterMs of the misconfiguration.
    for (let i = 0; i < 3; i++) {
      await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
      await sql(account, `UPDATE log SET retry_at = NULL, refused_since = coalesce(refused_since, 0) - 61000`)
      await sql(account, 'UPDATE replicas SET next_at = NULL')
      await runDurableObjectAlarm(stubOf(account))
    }
    broken = false // fixed
    const retry = await deposit(account, key, 5)
    const body = await retry.text()
    const records = await recordsOf(account)
    warn.mockRestore()
    error.mockRestore()
    expect(retry.status).toBe(201)
  })
})
