/**
 * The Durable Object namespace an object belongs to, found in its
 * environment: an object cannot be told its binding's name (`once()` takes
 * any namespace), but only its own namespace accepts its id. The status
 * reports (counters.ts) and the directory's pushes (directory-spread.ts)
 * reach other objects of the class through it.
 *
 * @param ctx - the object's state
 * @param env - the object's environment
 * @returns the namespace, or null when no binding of its class is in the environment
 * @example
 * const ns = ownNamespace(ctx, env)
 * ns?.get(ns.idFromName('once/status'))
 */
export function ownNamespace(ctx: DurableObjectState, env: unknown): DurableObjectNamespace | null {
  for (const value of Object.values((env ?? {}) as Record<string, unknown>)) {
    if (Object.prototype.toString.call(value) !== '[object DurableObjectNamespace]') continue
    const ns = value as DurableObjectNamespace
    try {
      if (ns.idFromString(ctx.id.toString()).equals(ctx.id)) return ns
    } catch {
      // Not this object's namespace: it refuses the id.
    }
  }
  return null
}
