import type { DomainStatus, RelayPlan, ReplicaOrigins, ReplicaSetPush, ReplicaSetView } from './types.js'

/**
 * A domain's replica set, on the side of the domain's object (issue 15
 * item 20; seed 000 claims 18–24: a new backup is brought up to date from
 * the request history). A domain learns its plan, and so its replicas, from
 * the writes it admits; a domain that gets no write would never hear of a
 * replica added to `origins`. So each domain keeps, next to its plan, when
 * its origins were set and which origins a write last replaced; it reports
 * both to the status object with its figures, and the status object's
 * directory (directory.ts) hands the new origins to every domain of the
 * same replica set ({@link adoptReplicaSets}). The alarm then feeds a
 * joining replica from the log (catch-up.ts).
 */

/**
 * Schema step for the `domains` table: when its origins were set
 * (`plan_at`), the origins a write last replaced (`replaced`, `replaced_at`),
 * and the origins it had before the directory changed them (`pushed_from`).
 *
 * @example
 * MIGRATIONS.push(REPLICA_SET_COLUMNS + DIRECTORY_SCHEMA)
 */
export const REPLICA_SET_COLUMNS = `
  ALTER TABLE domains ADD COLUMN plan_at INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE domains ADD COLUMN replaced TEXT;
  ALTER TABLE domains ADD COLUMN replaced_at INTEGER;
  ALTER TABLE domains ADD COLUMN pushed_from TEXT;`

/**
 * The one spelling of a replica set: its origins' names, URLs and drain
 * marks, sorted by name. Two plans with the same origins are one replica set
 * whatever their other options.
 *
 * @param origins - a plan's origins
 * @returns canonical JSON
 * @example
 * canonicalOrigins([{ name: 'r2', url: 'https://r2' }, { name: 'r1', url: 'https://r1' }]) // '[{"name":"r1",…},{"name":"r2",…}]'
 */
export function canonicalOrigins(origins: ReplicaOrigins): string {
  const listed = origins.map((o) => ({ name: o.name, url: o.url, ...(o.drain ? { drain: true } : {}) }))
  return JSON.stringify(listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
}

/**
 * Notes a plan that arrived with a write (in the admit's transaction; only
 * when the stored plan differs). A change of origins is a change of the
 * replica set, reported to the directory, unless it brings back exactly the
 * origins this domain had before the directory changed them: then the
 * directory's change was not for this domain (another route with the same
 * origins, or a Worker of the previous version still running), and the write
 * wins here without spreading.
 *
 * @param sql - the domain object's SQL storage
 * @param domain - the domain
 * @param before - the stored plan (JSON), or null for a new domain
 * @param plan - the plan the write carries
 * @param now - ms since epoch
 * @example
 * if (view.plan !== JSON.stringify(relay.plan)) noteWrittenPlan(sql, domain, view.plan, relay.plan, now)
 */
export function noteWrittenPlan(sql: SqlStorage, domain: string, before: string | null, plan: RelayPlan, now: number): void {
  const after = canonicalOrigins(plan.origins)
  const was = before ? canonicalOrigins((JSON.parse(before) as RelayPlan).origins) : null
  if (was === after) return
  const pushedFrom = sql.exec<{ p: string | null }>('SELECT pushed_from AS p FROM domains WHERE domain = ?', domain).toArray()[0]?.p ?? null
  const transition = was !== null && pushedFrom !== after
  sql.exec(
    `UPDATE domains SET plan_at = ?1, pushed_from = NULL,
       replaced = CASE WHEN ?2 THEN ?3 ELSE replaced END, replaced_at = CASE WHEN ?2 THEN ?1 ELSE replaced_at END WHERE domain = ?4`,
    now,
    transition ? 1 : 0,
    was,
    domain,
  )
}

/**
 * A domain's replica set as it reports it, from its `domains` row.
 *
 * @param row - the row's plan and replica-set columns
 * @returns the view, or undefined before the domain has a plan
 * @example
 * replicaSetOf(sql.exec('SELECT * FROM domains WHERE domain = ?', d).one())
 */
export function replicaSetOf(row: { plan: string | null; plan_at: number; replaced: string | null; replaced_at: number | null }): ReplicaSetView | undefined {
  if (!row.plan) return undefined
  const origins = JSON.parse(canonicalOrigins((JSON.parse(row.plan) as RelayPlan).origins)) as ReplicaOrigins
  const replaced = row.replaced && row.replaced_at !== null ? { origins: JSON.parse(row.replaced) as ReplicaOrigins, at: row.replaced_at } : undefined
  return { origins, at: row.plan_at, ...(replaced ? { replaced } : {}) }
}

/** What {@link adoptReplicaSets} needs of the object's ordered domains (ordered.ts). */
export interface DomainPlans {
  /** Brings a domain's replicas in line with a plan that came without a write. */
  adopt(domain: string, plan: RelayPlan, now: number): void
  /** Every domain the object holds. */
  status(): DomainStatus[]
}

/**
 * Takes the directory's word on domains' replica sets (on a domain's
 * object): a domain whose origins were last set before `learnedAt` takes the
 * pushed origins into its plan (its other options stay its own): a new
 * replica starts `joining` and the alarm feeds it the log from its start; a
 * replica no longer listed is removed and fed no more. A domain set later
 * than `learnedAt` (a newer write) keeps its own. Idempotent.
 *
 * @param host - the object's ordered domains and SQL storage
 * @param pushes - per domain, the origins and when the directory learned them
 * @param now - ms since epoch
 * @returns the status of each pushed domain this object holds, as it stands now
 * @example
 * const statuses = adoptReplicaSets({ sql, ordered }, [{ domain: 'acct-1', origins, learnedAt }], Date.now())
 */
export function adoptReplicaSets(host: { sql: SqlStorage; ordered: DomainPlans }, pushes: ReplicaSetPush[], now: number): DomainStatus[] {
  const { sql, ordered } = host
  for (const push of pushes) {
    const row = sql
      .exec<{ plan: string | null; plan_at: number; pushed_from: string | null }>('SELECT plan, plan_at, pushed_from FROM domains WHERE domain = ?', push.domain)
      .toArray()[0]
    if (!row?.plan || row.plan_at >= push.learnedAt) continue
    const plan = JSON.parse(row.plan) as RelayPlan
    const current = canonicalOrigins(plan.origins)
    if (current === canonicalOrigins(push.origins)) continue
    ordered.adopt(push.domain, { ...plan, origins: push.origins.map((o) => ({ name: o.name, url: o.url, ...(o.drain ? { drain: true } : {}) })) }, now)
    sql.exec('UPDATE domains SET plan_at = ?, pushed_from = coalesce(pushed_from, ?) WHERE domain = ?', push.learnedAt, current, push.domain)
  }
  const wanted = new Set(pushes.map((p) => p.domain))
  return ordered.status().filter((d) => wanted.has(d.domain))
}
