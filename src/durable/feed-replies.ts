import type { OriginReply } from '../shared/types.js'

/** Answer bytes one alarm run keeps for the pending requests it may finish (a feed's answers can be up to 8 MiB each). */
const REPLIES_BYTES = 16 * 1024 * 1024

/**
 * The first answer the feeds of one alarm run got for each entry, by domain and sequence, kept for
 * `completePending` (an answer in hand spares it a send) within {@link REPLIES_BYTES}: past it, it sends again.
 */
export class Replies extends Map<string, { origin: string; reply: OriginReply }> {
  #bytes = 0

  /** Keeps the first answer of an entry, while the run's budget lasts. */
  keep(key: string, answer: { origin: string; reply: OriginReply }): void {
    if (this.has(key) || this.#bytes + answer.reply.body.byteLength > REPLIES_BYTES) return
    this.#bytes += answer.reply.body.byteLength
    this.set(key, answer)
  }
}
