import { placeDomain, setIdOf } from './directory.js'
import { ownNamespace } from './own-namespace.js'
import { storeDomainStatus } from './status-figures.js'
import type { DomainStatus, ReplicaOrigins, StableAreaApi } from './types.js'

/**
 * Domains the status object's alarm tells of their new replica set per run at most; the alarm comes back a
 * second later for the rest.
 *
 * @example
 * Math.ceil(domains / SPREAD_PER_RUN) // status-object alarm runs that tell every domain
 */
export const SPREAD_PER_RUN = 32
/** Objects told at once (a Durable Object, like a Worker, keeps few outgoing connections busy). */
const SPREADS_IN_PARALLEL = 6
/** The first backoff after an object did not answer a push; it doubles up to {@link MAX_SPREAD_BACKOFF_MS}. */
const FIRST_SPREAD_BACKOFF_MS = 2000
const MAX_SPREAD_BACKOFF_MS = 300_000

/** The RPC a domain's object answers a push with (typed by its RPC surface: the generated stub type is too deep). */
type ReplicaSetApi = Pick<StableAreaApi, 'adoptReplicaSets'>

interface DueRow extends Record<string, SqlStorageValue> {
  domain: string
  object: string
  failures: number
  origins: string
  learned_at: number
}

/**
 * The status object's alarm work for the directory (directory.ts): tells
 * the objects of up to {@link SPREAD_PER_RUN} domains, the longest waiting
 * first, the origins their replica set now has, one RPC per object with all
 * of its domains, a few objects at once. An object's answer (each domain's
 * replicas as they now stand) goes into the figures at once, so the status
 * page shows the joining replica before the object's next report. An object
 * that does not answer is tried again with backoff (2 s, doubling, at most 5
 * minutes); a domain the object no longer holds leaves the directory.
 * Idempotent, as alarms run at least once: the object ignores a push it
 * already took, or one older than its own origins.
 *
 * @param ctx - the status object's state
 * @param env - its environment (to find its own namespace)
 * @example
 * await spreadReplicaSets(this.ctx, this.env)
 */
export async function spreadReplicaSets(ctx: DurableObjectState, env: unknown): Promise<void> {
  const { storage } = ctx
  const sql = storage.sql
  const due = sql
    .exec<DueRow>(
      `SELECT d.domain, d.object, d.failures, s.origins, s.learned_at FROM directory d JOIN replica_sets s ON s.id = d.target
       WHERE d.push_at <= ? ORDER BY d.push_at LIMIT ?`,
      Date.now(),
      SPREAD_PER_RUN,
    )
    .toArray()
  if (due.length === 0) return
  const ns = ownNamespace(ctx, env)
  const byObject = new Map<string, DueRow[]>()
  // Rows without an object id are each their own domain's object.
  for (const row of due) byObject.set(row.object || `\n${row.domain}`, [...(byObject.get(row.object || `\n${row.domain}`) ?? []), row])
  const objects = [...byObject]
  for (let i = 0; i < objects.length; i += SPREADS_IN_PARALLEL) {
    await Promise.all(
      objects.slice(i, i + SPREADS_IN_PARALLEL).map(async ([, rows]) => {
        const object = rows[0]!.object
        const pushes = rows.map((r) => ({ domain: r.domain, origins: JSON.parse(r.origins) as ReplicaOrigins, learnedAt: r.learned_at }))
        let answer: DomainStatus[]
        try {
          if (!ns) throw new Error('this StableArea found no binding of its own class in its environment')
          // A domain known only from the figures (it reported before the directory existed) is reached by its name.
          const id = object ? ns.idFromString(object) : ns.idFromName(`once/domain/${rows[0]!.domain}`)
          answer = await (ns.get(id) as unknown as ReplicaSetApi).adoptReplicaSets(pushes)
        } catch (err) {
          console.warn(`hono-once: telling ${rows.length} domain(s) of their new replica set failed (tried again with backoff): ${String(err)}`)
          return storage.transactionSync(() => {
            for (const r of rows) {
              const backoff = Math.min(MAX_SPREAD_BACKOFF_MS, FIRST_SPREAD_BACKOFF_MS * 2 ** Math.min(20, r.failures))
              sql.exec('UPDATE directory SET failures = failures + 1, push_at = ? WHERE domain = ?', Date.now() + backoff, r.domain)
            }
          })
        }
        storage.transactionSync(() => {
          const now = Date.now()
          for (const r of rows) {
            const status = answer.find((d) => d.domain === r.domain)
            if (!status?.replicaSet) {
              forget(sql, r.domain)
              continue
            }
            // Told: placed by what it now has; a domain that kept its own (a newer write) is pushed again only after a
            // newer change (one learned while this push was on its way keeps its push due).
            storeDomainStatus(sql, status, now)
            placeDomain(sql, r.domain, r.object || (ns?.idFromName(`once/domain/${r.domain}`).toString() ?? ''), setIdOf(sql, status.replicaSet.origins), status.replicaSet.at, now)
          }
        })
      }),
    )
  }
}

/** A domain its object no longer holds leaves the directory (and its count). */
function forget(sql: SqlStorage, domain: string): void {
  const row = sql.exec<{ set_id: number }>('DELETE FROM directory WHERE domain = ? RETURNING set_id', domain).toArray()[0]
  if (row) sql.exec('UPDATE replica_sets SET domains = domains - 1 WHERE id = ?', row.set_id)
}
