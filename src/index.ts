/**
 * hono-once: exactly-once HTTP requests for Hono on Cloudflare Workers.
 *
 * @example
 * import { Hono } from 'hono'
 * import { once, StableArea } from 'hono-once'
 *
 * const app = new Hono()
 * app.post('/payments', once(), (c) => c.json({ ok: true }, 201))
 * export { StableArea }
 * export default app
 * @module
 */
export * from './middleware/index.js'
export * from './durable/index.js'
export * from './origin-adapter/index.js'
