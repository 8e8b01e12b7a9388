import type { Context } from 'hono'
import type { ReceiverContext } from './types.js'

/** What a receiver nested inside another one's apply finds: the outer's store, and what it gave the handler. */
export interface Outer {
  store: object
  receiver: ReceiverContext
  /** The outer receiver verified the edge's signature (it has secrets). */
  signed: boolean
}

/** The connection a store works on, when two store objects may share one (`sqliteStore(db)` twice): set by the stores. */
const connectionOf = new WeakMap<object, object>()

/**
 * Notes that `store` works on `connection`, so receivers on two stores made on one connection count as one store
 * (the handler writes through one transaction).
 *
 * @returns the store
 * @example
 * return onConnection(db, { apply, nextSequence, … })
 */
export function onConnection<S extends object>(connection: object, store: S): S {
  connectionOf.set(store, connection)
  return store
}

/** Whether two stores are one: the same object, or made on the same connection. */
export function sameStore(a: object, b: object): boolean {
  return (connectionOf.get(a) ?? a) === (connectionOf.get(b) ?? b)
}

/** The receiver applying a request, by its context (`app.use` and the route: one Context). */
const byContext = new WeakMap<Context, Outer>()
/** …and by a mark on the request it hands on, for an app reached through a new Context (`app.mount()`, `subApp.fetch(c.req.raw)`). */
const byMark = new Map<string, Outer>()
/**
 * The mark's header: a name of this process's own, so no other process (and no client) can set it to anything
 * found here. Made on first use: a Worker may not generate random values in its global scope.
 */
let markName: string | undefined
const MARK = (): string => (markName ??= `x-hono-once-applying-${crypto.randomUUID()}`)

/**
 * Records that the receiver on `store` applies the request of `c`, and marks
 * the request (in place, or `c.req.raw` rebuilt with the mark when its
 * headers are immutable) so a receiver inside an app mounted under it finds
 * it too.
 *
 * @returns leave: call it when the handler chain has settled (a late one still finds the outer, whose store refuses it)
 */
export function enterApply(c: Context, outer: Outer): () => void {
  byContext.set(c, outer)
  const mark = crypto.randomUUID()
  byMark.set(mark, outer)
  try {
    // The request the receiver rebuilt around its buffered body has headers of its own: marked in place.
    c.req.raw.headers.set(MARK(), mark)
  } catch {
    // A runtime's own request (immutable headers): rebuilt with the mark.
    const headers = new Headers(c.req.raw.headers)
    headers.set(MARK(), mark)
    c.req.raw = new Request(c.req.raw, { headers })
  }
  return () => void byMark.delete(mark)
}

/**
 * The receiver already applying this request, if any: on the same context,
 * or marked on the request by one on the same `store` in an app this one is
 * mounted in (whose mark is then taken off the request the handler sees).
 * A mark of a receiver on another store is not nesting: a handler relaying
 * its request to another origin in this process.
 */
export function applyingOuter(c: Context, store: object): Outer | undefined {
  const same = byContext.get(c)
  if (same !== undefined) return same
  const mark = c.req.raw.headers.get(MARK())
  const outer = mark === null ? undefined : byMark.get(mark)
  if (outer !== undefined && sameStore(outer.store, store)) {
    const headers = new Headers(c.req.raw.headers)
    headers.delete(MARK())
    c.req.raw = new Request(c.req.raw, { headers })
    byContext.set(c, outer)
    return outer
  }
  return undefined
}
