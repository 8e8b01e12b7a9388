/**
 * Method calls (onceObject()'s `call` option) inside an {@link OnceObject}:
 * which methods a call may name, and running one inside the caller's
 * `transactionSync()`.
 */
import { failedReply, methodReply, NoReply, Rollback } from './once-object-reply.js'
import type { OnceMethodRequest } from './once-object-types.js'
import { MISCONFIGURED } from './schema.js'

/** A method of the subclass, unbound. */
export type ObjectMethod = (...args: unknown[]) => unknown

/** Whether `fn` is an `async function` (its work after the first `await` runs after any synchronous transaction). */
const isAsync = (fn: unknown): boolean => (fn as { constructor?: { name?: string } }).constructor?.name === 'AsyncFunction'

/** Methods a method call may never name: OnceObject's and the runtime's own. */
const NOT_CALLABLE: ReadonlySet<string> = new Set([
  'constructor', 'once', 'onceCall', 'onceRecord', 'fetch', 'alarm', 'webSocketMessage', 'webSocketClose', 'webSocketError',
])

/**
 * The method called `name` that the object's class (or a class between it
 * and `base`) declares: never one of `base`'s or above it.
 *
 * @param target - the object
 * @param base - the prototype where the search stops (`OnceObject.prototype`)
 * @param name - the method's name, as the edge's `call` option gave it
 * @returns the method, unbound
 * @throws Error (`hono-once misconfigured: …`) naming the class and `name` when there is no such method
 * @example
 * const deposit = findMethod(this, OnceObject.prototype, 'deposit')
 */
export function findMethod(target: object, base: object, name: string): ObjectMethod {
  if (typeof name === 'string' && !NOT_CALLABLE.has(name)) {
    let proto = Object.getPrototypeOf(target) as object | null
    while (proto && proto !== base) {
      const found = Object.getOwnPropertyDescriptor(proto, name)
      if (found) {
        if (typeof found.value === 'function' && isAsync(found.value)) {
          // Refused before it runs: its work after the first await would escape the transaction and its record.
          throw new Error(
            `${MISCONFIGURED} ${target.constructor.name}.${name} is async: a method call runs synchronously in one transaction with its record. Make it synchronous, or serve it through the object's app (with onceRoute({ lease: true }) if it calls out)`,
          )
        }
        if (typeof found.value === 'function') return found.value as ObjectMethod
        break
      }
      proto = Object.getPrototypeOf(proto) as object | null
    }
  }
  throw new Error(
    `${MISCONFIGURED} ${target.constructor.name} has no method ${JSON.stringify(name)} that onceObject()'s call option may name (a method the subclass declares, not one of OnceObject's)`,
  )
}

/**
 * Runs a method call; called inside the caller's `transactionSync()`, so a
 * throw rolls the method's writes back.
 *
 * @param target - the object, as `this`
 * @param method - from {@link findMethod}
 * @param request - its arguments, status and the edge's policy
 * @param requestId - the logical request's id ('' for an ungated call)
 * @param key - the idempotency key ('' for an ungated call)
 * @returns the reply and its stored form
 * @throws Rollback carrying the reply when it is not final: a 5xx, 408 or 429, a throw (`handler-failed`), a
 *   returned promise, a result that is no reply (not JSON, a `Response`, an `OnceReply` no `Response` could carry)
 * @example
 * const { answer, stored } = ctx.storage.transactionSync(() => runMethod(this, method, request, requestId, key))
 */
export function runMethod(
  target: object,
  method: ObjectMethod,
  request: OnceMethodRequest,
  requestId: string,
  key: string,
): ReturnType<typeof methodReply> {
  const name = JSON.stringify(request.method)
  let result: unknown
  try {
    result = method.apply(target, request.args)
  } catch (err) {
    console.error(`hono-once: the OnceObject method ${name} threw; its writes are rolled back`, err)
    throw new Rollback(failedReply(`The method ${name} threw (its error is in the object's log). Nothing was applied.`, requestId, key))
  }
  // Reading the result runs user code too (a `then` or other getter, a `toJSON`, a proxy's traps): what it throws is
  // logged, never answered, as the method's own throw is.
  let reply: ReturnType<typeof methodReply>
  try {
    if (typeof (result as { then?: unknown } | null)?.then === 'function') {
      ;(result as Promise<unknown>).then(undefined, () => {})
      console.error(`hono-once: the OnceObject method ${name} returned a promise; a method call runs in one synchronous transaction`)
      throw new Rollback(
        failedReply(
          `The method ${name} returned a promise: a method call runs synchronously in one transaction. Make it synchronous, or serve it through the object's app (with onceRoute({ lease: true }) if it calls out). Its writes before its first await were rolled back; what it does after that runs outside the transaction and its record.`,
          requestId,
          key,
        ),
      )
    }
    reply = methodReply(result, request.status, request.policy, requestId, key)
  } catch (err) {
    if (err instanceof Rollback) throw err
    if (err instanceof NoReply) throw new Rollback(failedReply(`The method ${name} returned ${err.message}. Nothing was applied.`, requestId, key))
    console.error(`hono-once: reading what the OnceObject method ${name} returned threw; its writes are rolled back`, err)
    throw new Rollback(
      failedReply(`The method ${name} returned a value that could not be read (a getter, a toJSON or a proxy of it threw: the error is in the object's log). Nothing was applied.`, requestId, key),
    )
  }
  if (!reply.final) throw new Rollback(reply.answer)
  return reply
}
