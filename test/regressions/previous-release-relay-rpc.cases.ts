/**
 * Review s31 (diff), D5: rolling-deploy compatibility. 15881d7 removed StableArea.relay(), the RPC the previous
 * release's dispatch() calls (Admission.recordRelay) before its first send behind once(). During a gradual
 * deployment each Durable Object runs one version and Workers of both versions call it (Cloudflare: "each Durable
 * Object is assigned a Worker version"; docs/replication.md itself plans for "a Worker of the previous version still
 * running during a rolling deploy"): every dispatch() behind once() in a previous-release Worker whose key lands on
 * an upgraded StableArea throws before it sends (500, key given back) until the rollout ends. Kept as a method that
 * stores nothing and answers true (what the new release does for dispatch()), the old Worker would go on unharmed.
 */
import { describe, expect, it } from 'vitest'
import { lookupKey } from '../../src/middleware/identity.js'
import { crashedWorker, newKey, stubFor } from '../helpers.js'

describe('a Worker of the previous release against an upgraded StableArea', () => {
  it('its dispatch() behind once() still gets an answer from StableArea.relay()', async () => {
    const key = newKey()
    const admitted = await crashedWorker(key)
    if (admitted.kind !== 'new') throw new Error(`expected a new admit, got ${admitted.kind}`)
    const stub = (await stubFor(key)) as unknown as { relay(lookup: string, token: string, relay: unknown): Promise<boolean> }
    const relay = {
      request: { method: 'POST', path: '/deposits', headers: [['content-type', 'application/json']], body: new TextEncoder().encode('{"amount":100}') },
      plan: { strategy: 'failover', origins: [{ name: 'eu', url: 'http://127.0.0.1:9' }], timeoutMs: 1000, deadlineMs: 3000, maxAttempts: 2, maxResponseBytes: 1 << 20 },
      key,
    }
    // The previous release: `if (!(await this.#stub.relay(...))) throw new Error('cannot store the relay …')`.
    const answer = await stub.relay(lookupKey('', key), admitted.token, relay).then(
      (ok) => ({ ok }),
      (err: unknown) => ({ threw: String(err) }),
    )
    console.log('previous-release relay() call:', JSON.stringify(answer))
    expect(answer).toEqual({ ok: true })
  })
})
