import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { expect, it } from 'vitest'
import { once } from '../src/index.js'

it('runs', async () => {
  let n = 0
  const app = new Hono()
  app.post('/x', once(), (c) => c.json({ n: ++n }, 201))
  const r1 = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': 'a' } }, env)
  const r2 = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': 'a' } }, env)
  expect(r1.status).toBe(201)
  expect(await r2.json()).toEqual({ n: 1 })
  expect(r2.headers.get('idempotent-replayed')).toBe('true')
})
