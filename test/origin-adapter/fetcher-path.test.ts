/**
 * A service-binding origin (`{ name, fetcher }`) gets the path the edge
 * routed, whatever it looks like: a path that starts with `//` read as a
 * network-path reference would reach the service as another path, past the
 * edge's guards (review s28, F2).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { proxy } from '../../src/index.js'

describe('the path a fetcher origin gets', () => {
  it.each(['//foo/admin/users', '///admin/users', '//user:pw@host/admin/users', '//foo/admin/users?x=1', '/%2F%2Ffoo/admin/users', '/a//b'])(
    'is the path and query the edge routed: %s',
    async (path) => {
      const seen: string[] = []
      const svc = {
        name: 'svc',
        fetcher: {
          fetch: async (req: Request) => {
            const u = new URL(req.url)
            seen.push(u.pathname + u.search)
            return new Response('the admin list', { status: 200 })
          },
        },
      }
      const routed: string[] = []
      const app = new Hono()
      app.use('/admin/*', async (c) => c.text('denied', 403))
      app.get('/*', async (c, next) => (routed.push(c.req.path + (new URL(c.req.url).search)), next()), proxy({ origins: [svc], strategy: 'hedge' }))
      const res = await app.request(`http://edge.test${path}`, {}, env)
      expect(res.status).toBe(200)
      expect(seen).toEqual(routed)
      expect(seen[0]).not.toMatch(/^\/admin\//)
    },
  )
})
