/**
 * Bounded polling on observable state: calls `probe` every `intervalMs`
 * until it returns something other than `undefined`, and returns that. Past
 * `timeoutMs` it throws, with the last value `describe` gives, so a test
 * never sleeps to paper over a race and never waits forever.
 *
 * @param what - what is awaited, for the error message
 * @param probe - reads the state; `undefined` means "not yet"
 * @param options - bounds, and how to describe the state when giving up
 * @returns the first defined value
 * @example
 * const stats = await pollUntil('the deposit applied', async () => {
 *   const s = await origin.stats()
 *   return s.byRequestId[id]?.applied === 1 ? s : undefined
 * })
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<unknown> | unknown } = {},
): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 50 } = options
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() >= deadline) {
      const state = options.describe ? JSON.stringify(await options.describe()) : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `; last state: ${state}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
