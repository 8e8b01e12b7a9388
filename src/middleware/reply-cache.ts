import type { StoredReply } from '../durable/types.js'

/** A committed reply as an isolate keeps it. */
export interface CachedReply {
  fingerprint: string
  requestId: string
  reply: StoredReply
  expiresAt: number
}

/** Bounds of the in-isolate cache of committed replies. */
export interface ReplyCacheOptions {
  /** Most replies kept. Default 1000. */
  maxEntries?: number
  /** Most body bytes kept in all. Default 8 MiB. */
  maxBytes?: number
}

/**
 * A small LRU of committed replies. A committed reply never changes until it
 * expires, so a replay found here needs no round trip to the stable area
 * (DESIGN §4). In-flight and new keys are never cached.
 *
 * @example
 * const cache = new ReplyCache({ maxEntries: 100 })
 * cache.set('scope:key', { fingerprint, requestId, reply, expiresAt })
 * cache.get('scope:key', Date.now())
 */
export class ReplyCache {
  readonly #entries = new Map<string, CachedReply>()
  readonly #maxEntries: number
  readonly #maxBytes: number
  #bytes = 0

  constructor({ maxEntries = 1000, maxBytes = 8 * 1024 * 1024 }: ReplyCacheOptions = {}) {
    this.#maxEntries = maxEntries
    this.#maxBytes = maxBytes
  }

  /** The live entry for `lookup`, refreshed as most recently used. */
  get(lookup: string, now: number): CachedReply | undefined {
    const entry = this.#entries.get(lookup)
    if (!entry) return undefined
    this.#delete(lookup, entry)
    if (entry.expiresAt <= now) return undefined
    this.#entries.set(lookup, entry)
    this.#bytes += entry.reply.body.byteLength
    return entry
  }

  /** Keeps `entry`, evicting the least recently used ones past the bounds. */
  set(lookup: string, entry: CachedReply): void {
    const size = entry.reply.body.byteLength
    if (size > this.#maxBytes) return
    const old = this.#entries.get(lookup)
    if (old) this.#delete(lookup, old)
    this.#entries.set(lookup, entry)
    this.#bytes += size
    for (const [key, value] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break
      this.#delete(key, value)
    }
  }

  get size(): number {
    return this.#entries.size
  }

  #delete(lookup: string, entry: CachedReply): void {
    this.#entries.delete(lookup)
    this.#bytes -= entry.reply.body.byteLength
  }
}
