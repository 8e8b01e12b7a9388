/**
 * The stable area: a SQLite-backed Durable Object that keeps the table of
 * processed requests. Import it to re-export from your Worker entry.
 *
 * @example
 * export { StableArea } from 'hono-once/durable'
 * @module
 */
export { StableArea, MISCONFIGURED } from './stable-area.js'
export { CHUNK_BYTES } from './records.js'
export { SCHEMA_VERSION } from './schema.js'
export type * from './types.js'
export { OnceObject, type OnceObjectApp } from './once-object.js'
export { OnceReply } from './once-object-reply.js'
export { onceRoute, type OnceRouteOptions } from './once-object-route.js'
export type * from './once-object-types.js'
