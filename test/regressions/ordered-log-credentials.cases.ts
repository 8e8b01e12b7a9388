import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { list, stubOf } from '../origin-adapter/domains.js'

/**
 * (Review s32, ordered.) docs/replication.md ("Storage and throughput"): "an ordered route may not list a client
 * credential (`Authorization`, `Cookie`, a name such as `X-Api-Key`) in proxy()'s forwardHeaders: such a request is
 * refused with a 500 misconfigured problem before anything is stored". The check (src/middleware/admit.ts via
 * src/shared/credentials.ts listedCredentials) knows three names only, so X-Api-Key is stored in the domain's log
 * (kept for logRetentionMs, a day by default) and resent to every replica. The gateway's own check
 * (credentialHeaderProblem) knows the wider class; proxy()'s ordered check does not use it.
 */

const loggedHeaders = (domain: string) =>
  runInDurableObject(stubOf(domain), (_o, s) => s.storage.sql.exec<{ headers: string }>('SELECT headers FROM log').toArray().map((r) => r.headers))

describe('an ordered route whose forwardHeaders list X-Api-Key', () => {
  it('is refused with 500 misconfigured before anything is stored, as docs/replication.md says', async () => {
    const [r1] = await startOrigins(['r1'])
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list([r1!]), strategy: 'replicate', forwardHeaders: ['content-type', 'X-Api-Key'] }))
    const domain = `cred-${crypto.randomUUID().slice(0, 8)}`
    const res = await app.request(
      `/accounts/${domain}/deposits`,
      { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json', 'x-api-key': 'sk_live_SECRET' }, body: '{"amount":1}' },
      env,
    )
    const logged = await loggedHeaders(domain)
    expect({ status: res.status, credentialInLog: logged.some((h) => h.includes('sk_live_SECRET')) }).toEqual({ status: 500, credentialInLog: false })
  })
})

describe('an ordered route keeps no credential header in its log (the kind: one classifier, isCredentialHeader)', () => {
  const send = async (forwardHeaders: string[] | undefined, headers: Record<string, string>) => {
    const [r1] = await startOrigins(['r1'])
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list([r1!]), strategy: 'replicate', ...(forwardHeaders ? { forwardHeaders } : {}) }))
    const domain = `cred-${crypto.randomUUID().slice(0, 8)}`
    const res = await app.request(
      `/accounts/${domain}/deposits`,
      { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json', ...headers }, body: '{"amount":1}' },
      env,
    )
    return { status: res.status, logged: (await loggedHeaders(domain)).join('\n') }
  }

  it.each(['X-Auth-Token', 'x-session', 'Ocp-Apim-Subscription-Key', 'api_key', 'X-CSRF-Token', 'Cookie'])('refuses forwardHeaders listing %s', async (name) => {
    const { status, logged } = await send(['content-type', name], { [name]: 'secret-value-42' })
    expect({ status, stored: logged.includes('secret-value-42') }).toEqual({ status: 500, stored: false })
  })

  it('without forwardHeaders, drops every credential header from the logged request and keeps the others', async () => {
    const { status, logged } = await send(undefined, { 'x-api-key': 'k-secret-1', 'x-auth-token': 't-secret-2', authorization: 'Bearer b-secret-3', 'x-tenant': 'acme', 'x-request-source': 'app' })
    expect(status).toBe(201)
    expect({ secrets: ['k-secret-1', 't-secret-2', 'b-secret-3'].filter((s) => logged.includes(s)), kept: ['acme', 'app'].filter((s) => logged.includes(s)) }).toEqual({ secrets: [], kept: ['acme', 'app'] })
  })
})
