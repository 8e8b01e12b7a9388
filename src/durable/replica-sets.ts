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
 * and the origins it had before the directory's latest push (`pushed_from`).
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
 * Whether two replica sets are one service: they share at least one origin,
 * by name **and** URL. Only such sets are ever linked (a write's change is
 * spread, a push is taken): two routes whose origins merely have the same
 * names, or whose domain names collide, are never mixed up.
 *
 * @param a - one set's origins
 * @param b - the other's
 * @returns true when an origin of `a` has the name and URL of one of `b`
 * @example
 * sameService([{ name: 'r1', url: 'https://r1' }], [{ name: 'r1', url: 'https://r1' }, { name: 'r2', url: 'https://r2' }]) // true
 */
export function sameService(a: ReplicaOrigins, b: ReplicaOrigins): boolean {
  const urls = new Map(a.map((o) => [o.name, o.url]))
  return b.some((o) => urls.get(o.name) === o.url)
}

/**
 * Notes a plan that arrived with a write (in the admit's transaction; when
 * the stored plan differs, or a push set the domain's origins). A change of
 * origins is a change of the replica set, reported to the directory, unless:
 *
 * - it brings back exactly the origins this domain had before the directory's
 *   latest push (a Worker of the previous version still running during a
 *   rolling deploy, or another route with the same origins): the write wins
 *   here without spreading;
 * - it shares no origin (name and URL) with the set it replaces: another
 *   service's write (two ordered routes whose domain names collide), or every
 *   origin replaced at once. The write wins here, is logged, and is not spread.
 *
 * A write that keeps the origins a push brought makes them the domain's own:
 * a later change from them is spread.
 *
 * @param sql - the domain object's SQL storage
 * @param domain - the domain
 * @param before - the stored plan (JSON), or null for a new domain
 * @param plan - the plan the write carries
 * @param now - ms since epoch
 * @example
 * if (view.plan !== JSON.stringify(relay.plan) || view.pushedFrom !== null) noteWrittenPlan(sql, domain, view.plan, relay.plan, now)
 */
export function noteWrittenPlan(sql: SqlStorage, domain: string, before: string | null, plan: RelayPlan, now: number): void {
  const after = canonicalOrigins(plan.origins)
  const was = before ? canonicalOrigins((JSON.parse(before) as RelayPlan).origins) : null
  if (was === after) {
    sql.exec('UPDATE domains SET pushed_from = NULL WHERE domain = ? AND pushed_from IS NOT NULL', domain)
    return
  }
  const pushedFrom = sql.exec<{ p: string | null }>('SELECT pushed_from AS p FROM domains WHERE domain = ?', domain).toArray()[0]?.p ?? null
  const related = was !== null && sameService((JSON.parse(was) as ReplicaOrigins), plan.origins)
  if (was !== null && !related) {
    console.warn(
      `hono-once: a write to ordering domain ${JSON.stringify(domain)} replaced every origin of its replica set (${names(was)} → ${names(after)}); ` +
        'taken in this domain only, not spread to others. Do two ordered routes use the same domain names?',
    )
  }
  const transition = related && pushedFrom !== after
  sql.exec(
    `UPDATE domains SET plan_at = ?1, pushed_from = NULL,
       replaced = CASE WHEN ?2 THEN ?3 ELSE replaced END, replaced_at = CASE WHEN ?2 THEN ?1 ELSE replaced_at END WHERE domain = ?4`,
    now,
    transition ? 1 : 0,
    was,
    domain,
  )
}

const names = (canonical: string): string => (JSON.parse(canonical) as ReplicaOrigins).map((o) => o.name).join(', ')

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
 * pushed origins into its plan (its other options stay its own), if they are
 * the same service ({@link sameService}): a new replica starts `joining` and
 * the alarm feeds it the log from its start (one removed earlier with the
 * same URL resumes where it was); a replica no longer listed is removed and
 * fed no more; a listed replica whose URL changes starts over as a new one.
 * A domain set later than `learnedAt` (a newer write) keeps its own, and a
 * domain of another service ignores the push. Idempotent.
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
    // Another service's set (no origin shared by name and URL) is never taken, whatever the directory believes.
    if (current === canonicalOrigins(push.origins) || !sameService(plan.origins, push.origins)) continue
    ordered.adopt(push.domain, { ...plan, origins: push.origins.map((o) => ({ name: o.name, url: o.url, ...(o.drain ? { drain: true } : {}) })) }, now)
    // The set this push replaced: a write bringing it back is a Worker of the previous version (at most two run at once).
    sql.exec('UPDATE domains SET plan_at = ?, pushed_from = ? WHERE domain = ?', push.learnedAt, current, push.domain)
  }
  const wanted = new Set(pushes.map((p) => p.domain))
  return ordered.status().filter((d) => wanted.has(d.domain))
}

/**
 * The reason an operator's `setReplica(…, 'draining')` gives the replica: a replica an operator drained stays out
 * of rotation through config syncs (a deploy), until an operator puts it back; only a config's own `drain` (any
 * other reason) is undone by the config.
 */
export const DRAINED_BY_OPERATOR = 'drained by an operator'

/**
 * Brings a domain's replicas in line with a plan (a write's, or one the
 * directory pushed), inside the object's transaction: a new origin joins (in
 * a domain with history it starts `joining` and is fed the log; in a new
 * domain it is `active` at once), `drain` takes one out of rotation keeping
 * its progress (and its removal puts it back, unless an operator drained it; a `suspect` or `stale` replica is out
 * of rotation already and stays as it is, so a drain never clears suspicion), and an origin no longer listed is removed, its progress kept
 * aside (`removed_replicas`): listed again at the same URL, it resumes where
 * it was (not one removed while `suspect` or `stale`: it comes back new). A listed origin whose URL changes is another server: it starts
 * over as a new one (its progress was the old server's).
 *
 * @param sql - the domain object's SQL storage
 * @param domain - the domain
 * @param plan - the plan whose origins the domain now has
 * @param next - the domain's next sequence
 * @param now - ms since epoch
 * @example
 * syncReplicas(sql, 'acct-1', relay.plan, view.next, Date.now())
 */
export function syncReplicas(sql: SqlStorage, domain: string, plan: RelayPlan, next: number, now: number): void {
  const listed = new Set(plan.origins.map((o) => o.name))
  const fresh = next === 1 ? 'active' : 'joining'
  for (const o of plan.origins) {
    const had = sql.exec<KeptReplica>('SELECT url, acked, state FROM replicas WHERE domain = ? AND name = ?', domain, o.name).toArray()[0]
    let acked = 0
    if (had?.url !== o.url) {
      const kept = sql
        .exec<{ url: string; acked: number }>('DELETE FROM removed_replicas WHERE domain = ? AND name = ? RETURNING url, acked', domain, o.name)
        .toArray()[0]
      if (kept?.url === o.url) acked = kept.acked
      if (had) removeReplica(sql, domain, o.name, had, now)
    }
    const state = o.drain ? 'draining' : acked === 0 ? fresh : acked >= next - 1 ? 'active' : 'lagging'
    sql.exec(
      `INSERT INTO replicas (domain, name, url, state, acked, updated_at) VALUES (?1, ?2, ?3, ?4, ?7, ?5)
       ON CONFLICT (domain, name) DO UPDATE SET
         updated_at = CASE WHEN state IN ('suspect', 'stale') THEN updated_at WHEN ?6 OR (state = 'draining' AND reason IS NOT ?8) THEN excluded.updated_at ELSE updated_at END,
         state = CASE WHEN state IN ('suspect', 'stale') THEN state WHEN ?6 THEN 'draining' WHEN state = 'draining' AND reason IS NOT ?8 THEN 'lagging' ELSE state END`,
      domain,
      o.name,
      o.url,
      state,
      now,
      o.drain ? 1 : 0,
      acked,
      DRAINED_BY_OPERATOR,
    )
  }
  for (const r of sql.exec<KeptReplica & { name: string }>('SELECT name, url, acked, state FROM replicas WHERE domain = ?', domain).toArray()) {
    if (listed.has(r.name)) continue
    removeReplica(sql, domain, r.name, r, now)
  }
  sql.exec('UPDATE domains SET plan = ? WHERE domain = ?', JSON.stringify(plan), domain)
}

interface KeptReplica extends Record<string, SqlStorageValue> {
  url: string
  acked: number
  state: string
}

/**
 * Takes a replica out of `domain`, keeping aside what it acknowledged there (at that URL), unless it was `suspect`
 * or `stale`: its progress is not to be trusted, and it comes back as a new replica.
 */
function removeReplica(sql: SqlStorage, domain: string, name: string, was: KeptReplica, now: number): void {
  sql.exec('DELETE FROM replicas WHERE domain = ? AND name = ?', domain, name)
  if (was.state === 'suspect' || was.state === 'stale') {
    sql.exec('DELETE FROM removed_replicas WHERE domain = ? AND name = ?', domain, name)
    return
  }
  sql.exec(
    `INSERT INTO removed_replicas (domain, name, url, acked, removed_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (domain, name) DO UPDATE SET url = excluded.url, acked = excluded.acked, removed_at = excluded.removed_at`,
    domain,
    name,
    was.url,
    was.acked,
    now,
  )
}
