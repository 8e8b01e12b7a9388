import type { Context } from 'hono'

/**
 * Hands `work` to the runtime to finish after the answer
 * (`executionCtx.waitUntil`, which gives it about 30 s on Workers). Without
 * an execution context (a test calling `app.fetch` bare) the work simply
 * runs on. `work` must not reject: catch and log inside it.
 *
 * @param c - the request context
 * @param work - a promise that never rejects
 * @example
 * inBackground(c, stub.commit(request).catch((err) => console.error('commit failed', err)))
 */
export function inBackground(c: Context, work: Promise<unknown>): void {
  const waitUntil = waitUntilOf(c)
  if (waitUntil) waitUntil(work)
  else void work
}

/**
 * The runtime's `waitUntil` for this request, or undefined when there is no
 * execution context (`app.fetch(req, env)` without one): then nothing keeps
 * work alive after the answer.
 *
 * @param c - the request context
 * @returns `executionCtx.waitUntil`, bound, or undefined
 * @example
 * const waitUntil = waitUntilOf(c)
 * if (waitUntil) waitUntil(work) else await work
 */
export function waitUntilOf(c: Context): ((work: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx
    return ctx.waitUntil.bind(ctx)
  } catch {
    return undefined
  }
}

/**
 * Resolves in a later turn of the event loop (a 0 ms timer), after what the
 * current turn hands to the runtime (an answer) has been taken.
 *
 * @returns a promise that resolves with nothing
 * @example
 * inBackground(c, nextTurn().then(() => commit()))
 */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))
