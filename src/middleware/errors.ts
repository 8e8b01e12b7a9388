import type { CommitFailure } from './admission.js'

/**
 * Thrown by `c.var.once.commit()` when the reply was **not** durably stored:
 * `reason` is `lease_lost` (another attempt took the key over, e.g. after
 * this Worker stalled past its lease) or `unavailable` (the stable area
 * could not be reached after retries).
 *
 * A handler that commits before an effect it must do at most once should
 * let this propagate (or stop there), and not go on to that effect: the
 * request took effect up to `commit()`, so its key is never released
 * (duplicates get `reply-lost`); with `unavailable` it frees only after its
 * lease, if the stable area could not be written at all, and a retry may
 * then run the handler again (logged).
 *
 * @example
 * try {
 *   await c.var.once.commit(res)
 * } catch (err) {
 *   if (err instanceof OnceCommitError) return c.json({ error: 'try again' }, 503)
 *   throw err
 * }
 * await sendReceipt() // only after a durable commit
 */
export class OnceCommitError extends Error {
  override readonly name = 'OnceCommitError'

  constructor(
    readonly reason: CommitFailure,
    readonly requestId: string,
    options?: { cause?: unknown },
  ) {
    super(
      reason === 'lease_lost'
        ? `hono-once: the reply of ${requestId} was not stored: another attempt holds its key`
        : `hono-once: the reply of ${requestId} was not stored: the stable area could not be reached`,
      options,
    )
  }
}
