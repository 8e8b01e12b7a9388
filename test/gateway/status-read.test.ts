/**
 * What `GET /__once/status` shows and when it opens: every route's latencies in an origin's figures, a drained
 * origin as draining, a problem naming a missing binding, and no page behind a token short enough to guess.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway, { buildGateway, parseGatewayConfig } from '../../src/gateway.js'
import { PROBLEM_BASE } from '../../src/shared/problem.js'
import { problemOf } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const TOKEN = 'status-token-for-tests'
const read = (config: object, bindings: Record<string, unknown> = {}, token = TOKEN) =>
  gateway.fetch!(
    new Request('http://gateway.test/__once/status', { headers: { authorization: `Bearer ${token}` } }) as Request<unknown, IncomingRequestCfProperties>,
    { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_STATUS_TOKEN: TOKEN, ONCE_CONFIG: JSON.stringify(config), ...bindings } as never,
    ctx,
  )
type Shown = { origins: { name: string; state: string; p50Ms: number | null; p95Ms: number | null; recentMs: number[] }[] }

describe('the status page: an origin serving several routes', () => {
  const config = parseGatewayConfig({
    origins: [{ name: 'eu', url: 'https://eu.example' }],
    routes: [{ path: '/accounts/:id/*', methods: ['POST'] }, { path: '/accounts/*', methods: ['GET'], strategy: 'hedge' }],
  })
  const shown = async (writes: number[], reads: number[]) => {
    const { app, state } = buildGateway(config)
    for (const ms of writes) state.groups[0]!.group.health.latencyOf('eu').add(ms)
    for (const ms of reads) state.groups[1]!.group.health.latencyOf('eu').add(ms)
    const res = await app.fetch(new Request('http://gateway.test/__once/status', { headers: { authorization: `Bearer ${TOKEN}` } }), { ONCE: env.ONCE, ONCE_STATUS_TOKEN: TOKEN } as never, ctx)
    return ((await res.json()) as Shown).origins[0]!
  }

  it("shows its slow writes though its fast reads are many: p95 over every route's latencies", async () => {
    const eu = await shown(Array(10).fill(2000), Array(60).fill(10))
    expect(eu.p95Ms).toBe(2000)
    expect(eu.p50Ms).toBe(10)
    expect(eu.recentMs).toContain(2000)
    expect(eu.recentMs).toContain(10)
    expect(eu.recentMs).toHaveLength(60)
  })

  it('whichever route is listed first, and with one route alone the chart is its window, oldest first', async () => {
    const eu = await shown(Array(60).fill(10), Array(10).fill(2000))
    expect(eu.p95Ms).toBe(2000)
    expect(eu.recentMs).toContain(2000)
    expect((await shown([1, 2, 3], [])).recentMs).toEqual([1, 2, 3])
  })
})

describe('the status page: states and configuration', () => {
  it('shows an origin the config drains as draining (hedge and failover routes too), the others up', async () => {
    for (const strategy of ['hedge', 'failover']) {
      const config = { origins: [{ name: 'eu', url: 'https://eu.example', drain: true }, { name: 'us', url: 'https://us.example' }], routes: [{ path: '/*', strategy }] }
      const res = await read(config)
      expect(((await res.json()) as Shown).origins.map((o) => [o.name, o.state])).toEqual([
        ['eu', 'draining'],
        ['us', 'up'],
      ])
    }
  })

  it('answers a misconfigured problem naming the ONCE binding when it is missing, as a write does', async () => {
    const config = { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }] }
    const res = await read(config, { ONCE: undefined })
    expect(res.status).toBe(500)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, detail: expect.stringMatching(/bind the StableArea class as ONCE/) })
  })

  it.each(['1', 'short-token-15ch'.slice(0, 15)])('stays closed behind a status token shorter than 16 characters (%j), naming ONCE_STATUS_TOKEN', async (token) => {
    const config = { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }] }
    const res = await read(config, { ONCE_STATUS_TOKEN: token }, token)
    expect(res.status).toBe(500)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, detail: expect.stringMatching(/ONCE_STATUS_TOKEN secret is shorter than 16 characters/) })
  })

  it('opens with a token of 16 characters', async () => {
    const token = '0123456789abcdef'
    const res = await read({ origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }] }, { ONCE_STATUS_TOKEN: token }, token)
    expect(res.status).toBe(200)
  })
})

describe('a bad config, told to whom', () => {
  const dup = { origins: [{ name: 'eu', url: 'http://10.1.2.3:8080' }, { name: 'us', url: 'http://10.1.2.3:8080/' }], routes: [{ path: '/a/:id/*', strategy: 'replicate', domain: 'param:id' }] }
  const send = (config: unknown, token: string | undefined, authorization?: string) =>
    gateway.fetch!(
      new Request('http://gateway.test/anything', authorization ? { headers: { authorization } } : {}) as Request<unknown, IncomingRequestCfProperties>,
      { ONCE: env.ONCE, ONCE_CONFIG: typeof config === 'string' ? config : JSON.stringify(config), ...(token ? { ONCE_STATUS_TOKEN: token } : {}) } as never,
      ctx,
    )

  it.each([
    ['one URL for two replicas', dup, '10.1.2.3'],
    ['a syntax error', '{"origins":[{"name":"eu","url":"http://10.9.9.9:8080"}],"routes":[{"path":"/*",}]}', 'not valid JSON'],
  ])("%s: shows an unauthenticated caller, a wrong or a short token no part of the message; the status token all of it", async (_name, config, quoted) => {
    for (const [token, authorization] of [[undefined, undefined], [TOKEN, undefined], [TOKEN, 'Bearer wrong-token-0123456789'], ['short', 'Bearer short']]) {
      const res = await send(config, token, authorization)
      expect(res.status).toBe(500)
      const { detail } = await problemOf(res)
      expect(detail).not.toContain(quoted)
      expect(detail).toMatch(/configuration is invalid; the Worker's log says why/)
    }
    expect(String((await problemOf(await send(config, TOKEN, `Bearer ${TOKEN}`))).detail)).toContain(quoted)
  })
})
