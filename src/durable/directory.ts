import { canonicalOrigins, sameService } from './replica-sets.js'
import type { DomainStatus, ReplicaOrigins, ReplicaSetView } from './types.js'

/**
 * The directory of domains and their replica sets, kept by the status object
 * (issue 15 item 20; seed 000 claims 18–24). Every domain's object reports
 * its replica set with its figures (replica-sets.ts); when a write brings a
 * domain new origins, the report says which origins they replaced, and the
 * directory moves every domain it knows of that replica set (a lineage: the
 * sets linked by such changes) to the newest one. Its alarm hands the new
 * origins to those domains' objects in batches (directory-spread.ts); each
 * object's alarm then feeds a joining replica the log (catch-up.ts). Nothing
 * of this is on a request's path.
 *
 * Only sets of one service are linked: they share an origin by name and URL
 * (`sameService`); a write that replaces every origin of its domain (two
 * routes whose domain names collide) is that domain's alone. The newest
 * change learned wins: a domain whose origins were set later than the change
 * (by a newer write) keeps its own, and a write that undoes the latest push
 * on its domain (another route with the same origins, a Worker of the
 * previous version) is not spread.
 */

/**
 * Tables (in every object, filled only in the status object): `replica_sets`
 * (each set of origins once, its lineage, when a write last brought it in
 * place of another, and how many known domains have it) and
 * `directory` (per domain its object, the set it has, since when, the set it
 * should have, and when to push it).
 *
 * @example
 * MIGRATIONS.push(REPLICA_SET_COLUMNS + DIRECTORY_SCHEMA)
 */
export const DIRECTORY_SCHEMA = `
  CREATE TABLE IF NOT EXISTS replica_sets (
    id         INTEGER PRIMARY KEY,
    origins    TEXT NOT NULL UNIQUE,
    lineage    INTEGER NOT NULL,
    learned_at INTEGER NOT NULL DEFAULT 0,
    domains    INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE IF NOT EXISTS directory (
    domain   TEXT PRIMARY KEY,
    object   TEXT NOT NULL,
    set_id   INTEGER NOT NULL,
    plan_at  INTEGER NOT NULL,
    target   INTEGER NOT NULL,
    push_at  INTEGER,
    failures INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS directory_by_set ON directory (set_id);
  CREATE INDEX IF NOT EXISTS directory_by_target ON directory (target);
  CREATE INDEX IF NOT EXISTS directory_by_push ON directory (push_at) WHERE push_at IS NOT NULL;`

/** A replica's join progress over the domains of its replica sets, as the status page shows it. */
export interface JoinProgress {
  name: string
  /** Domains the directory knows whose replica set lists it, or will once told (a domain that kept an older set without it is not counted). */
  domains: number
  /** Of those, where it is `active` (it reached the head). */
  upToDate: number
  /** Where it is being fed the log (`joining`), or catching up (`lagging`). */
  joining: number
  /** Where it needs a resync from a snapshot (`stale`) or diverged (`suspect`). */
  resync: number
  /** Domains not told of it yet (the directory's push is pending). */
  waiting: number
}

/** Origins listed in one replica set at most; a report naming more is not taken into the directory. */
const MAX_SET_ORIGINS = 64

/**
 * Takes the replica sets of a report's domains into the directory (in the
 * status object, inside the report's transaction): links a replaced set to
 * its successor, and marks the domains that must be told.
 *
 * @param sql - the status object's SQL storage
 * @param reporter - the reporting object's id
 * @param domains - the report's domains
 * @param now - ms since epoch
 * @example
 * learnDomains(sql, report.reporter, report.domains, Date.now())
 */
export function learnDomains(sql: SqlStorage, reporter: string, domains: DomainStatus[], now: number): void {
  for (const d of domains) {
    const set = d.replicaSet
    if (!isReplicaSet(set) || typeof d.domain !== 'string') continue
    const id = setIdOf(sql, set.origins)
    // Only a change within one service links two sets (sameService); another is its domain's own affair.
    if (set.replaced && isOrigins(set.replaced.origins) && Number.isSafeInteger(set.replaced.at) && sameService(set.replaced.origins, set.origins)) {
      learnChange(sql, setIdOf(sql, set.replaced.origins), id, set.replaced.at, now)
    }
    placeDomain(sql, d.domain, reporter, id, set.at, now)
  }
}

/**
 * Places one domain in the directory: the set it has, since when, and the
 * set it should have; a push is due when they differ, the domain's set is
 * older than the change, and the two share an origin (its object takes no
 * other: a domain that missed a step between two sets that share none keeps
 * its own until its next write).
 *
 * @param sql - the status object's SQL storage
 * @param domain - the domain
 * @param object - its object's id
 * @param setId - the set it has
 * @param planAt - when it got it
 * @param now - ms since epoch
 * @example
 * placeDomain(sql, 'acct-1', reporter, setIdOf(sql, origins), at, Date.now())
 */
export function placeDomain(sql: SqlStorage, domain: string, object: string, setId: number, planAt: number, now: number): void {
  const target = newestOf(sql, lineageOf(sql, setId))
  // Its object takes only a set of its own service (it would refuse this one: it missed a step between them).
  const push = target.id !== setId && planAt < target.learnedAt && sameService(originsOf(sql, setId), originsOf(sql, target.id)) ? now : null
  const old = sql.exec<{ set_id: number }>('SELECT set_id FROM directory WHERE domain = ?', domain).toArray()[0]
  sql.exec(
    `INSERT INTO directory (domain, object, set_id, plan_at, target, push_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (domain) DO UPDATE SET object = ?2, set_id = ?3, plan_at = ?4, target = ?5,
       push_at = CASE WHEN ?6 IS NULL THEN NULL ELSE coalesce(push_at, ?6) END, failures = CASE WHEN ?6 IS NULL THEN 0 ELSE failures END`,
    domain,
    object,
    setId,
    planAt,
    target.id,
    push,
  )
  if (old?.set_id === setId) return
  if (old) sql.exec('UPDATE replica_sets SET domains = domains - 1 WHERE id = ?', old.set_id)
  sql.exec('UPDATE replica_sets SET domains = domains + 1 WHERE id = ?', setId)
}

/**
 * The id of a replica set (its origins, in their one spelling), added when new.
 *
 * @param sql - the status object's SQL storage
 * @param origins - the set's origins
 * @returns its id
 * @example
 * setIdOf(sql, [{ name: 'r1', url: 'https://r1' }])
 */
export function setIdOf(sql: SqlStorage, origins: ReplicaOrigins): number {
  const key = canonicalOrigins(origins)
  const row = sql.exec<{ id: number }>('SELECT id FROM replica_sets WHERE origins = ?', key).toArray()[0]
  if (row) return row.id
  const id = sql.exec<{ id: number }>('INSERT INTO replica_sets (origins, lineage) VALUES (?, 0) RETURNING id', key).one().id
  sql.exec('UPDATE replica_sets SET lineage = id WHERE id = ?', id)
  return id
}

/** A write replaced set `from` with `to` at `at`: one lineage, `to` learned then; its domains are retargeted. */
function learnChange(sql: SqlStorage, from: number, to: number, at: number, now: number): void {
  if (from === to) return
  const into = lineageOf(sql, to)
  const merged = sql.exec('UPDATE replica_sets SET lineage = ? WHERE lineage = ? AND lineage != ?', into, lineageOf(sql, from), into).rowsWritten
  const newer = sql.exec('UPDATE replica_sets SET learned_at = ? WHERE id = ? AND learned_at < ?', at, to, at).rowsWritten
  if (merged + newer === 0) return
  const target = newestOf(sql, into)
  // The sets of the lineage whose domains are told: those that share an origin with the newest (see placeDomain).
  const newest = originsOf(sql, target.id)
  const told = sql
    .exec<{ id: number; origins: string }>('SELECT id, origins FROM replica_sets WHERE lineage = ?', into)
    .toArray()
    .filter((s) => s.id !== target.id && sameService(JSON.parse(s.origins) as ReplicaOrigins, newest))
    .map((s) => s.id)
  sql.exec(
    `UPDATE directory SET target = ?1, push_at = CASE WHEN set_id IN (SELECT value FROM json_each(?5)) AND plan_at < ?2 THEN coalesce(push_at, ?3) ELSE NULL END
     WHERE set_id IN (SELECT id FROM replica_sets WHERE lineage = ?4)`,
    target.id,
    target.learnedAt,
    now,
    into,
    JSON.stringify(told),
  )
  adoptReported(sql, from, target.id, now)
  sql.exec('UPDATE replica_sets SET domains = (SELECT count(*) FROM directory WHERE set_id = ?1) WHERE id = ?1', from)
}

/**
 * Domains the figures know but the directory does not (they reported before it existed, and have been quiet
 * since), whose replicas are exactly the origins of set `from`, by name and URL: they are of that set, and are
 * told too. Their object is found by the domain's name (`once/domain/<name>`, marked by an empty `object`). A
 * replica reported before the figures kept URLs (schema step 8) matches by name; the domain's object takes the
 * push only if its own origins share one with it by name and URL (replica-sets.ts), so a domain of another
 * service is never moved. A scan of the figures' replica rows, once per change of origins learned.
 */
function adoptReported(sql: SqlStorage, from: number, target: number, now: number): void {
  const origins = originsOf(sql, from)
  sql.exec(
    `INSERT INTO directory (domain, object, set_id, plan_at, target, push_at)
     SELECT sr.domain, '', ?1, 0, ?2, ?3 FROM status_replicas sr WHERE sr.domain NOT IN (SELECT domain FROM directory)
     GROUP BY sr.domain HAVING count(*) = ?4
       AND sum(EXISTS (SELECT 1 FROM json_each(?5) o WHERE o.value ->> '$.name' = sr.name AND (sr.url IS NULL OR o.value ->> '$.url' = sr.url))) = ?4`,
    from,
    target,
    now,
    origins.length,
    JSON.stringify(origins),
  )
}

function originsOf(sql: SqlStorage, id: number): ReplicaOrigins {
  return JSON.parse(sql.exec<{ origins: string }>('SELECT origins FROM replica_sets WHERE id = ?', id).one().origins) as ReplicaOrigins
}

function lineageOf(sql: SqlStorage, id: number): number {
  return sql.exec<{ lineage: number }>('SELECT lineage FROM replica_sets WHERE id = ?', id).one().lineage
}

/** The set of a lineage a write brought in most recently (the only one, for a lineage of one). */
function newestOf(sql: SqlStorage, lineage: number): { id: number; learnedAt: number } {
  const row = sql
    .exec<{ id: number; learned_at: number }>('SELECT id, learned_at FROM replica_sets WHERE lineage = ? ORDER BY learned_at DESC, id DESC LIMIT 1', lineage)
    .one()
  return { id: row.id, learnedAt: row.learned_at }
}

/**
 * When the status object's alarm must run to push replica sets, or null.
 *
 * @param sql - the status object's SQL storage
 * @returns the earliest due push
 * @example
 * nextAlarm(sql, [relays.nextWake(), directoryWake(sql)])
 */
export function directoryWake(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>('SELECT min(push_at) AS at FROM directory WHERE push_at IS NOT NULL').one().at
}

/**
 * Each replica's join progress over the domains of the replica sets it is
 * listed in (not draining), from the directory's counts and the replica
 * states the domains reported. A domain counts under the set it has, and
 * under the set a pending push brings it; one that kept an older set (a newer
 * write) counts under that one. States count only where the replica has a
 * URL the directory's sets give that name (a replica of another service with
 * the same name is not mixed in; one reported before the figures kept URLs
 * counts by its name). Cheap: counts per set, the pending pushes, and the
 * troubled replicas (by their index).
 *
 * @param sql - the status object's SQL storage
 * @returns one entry per replica name, by name
 * @example
 * joinProgress(sql) // [{ name: 'r4', domains: 34, upToDate: 12, joining: 20, resync: 0, waiting: 2 }, …]
 */
export function joinProgress(sql: SqlStorage): JoinProgress[] {
  const totals = new Map<string, { domains: number; waiting: number; urls: Set<string> }>()
  const listed = (origins: string) => (JSON.parse(origins) as ReplicaOrigins).filter((o) => !o.drain)
  const add = (o: { name: string; url: string }, field: 'domains' | 'waiting', n: number) => {
    const t = totals.get(o.name) ?? { domains: 0, waiting: 0, urls: new Set<string>() }
    t[field] += n
    t.urls.add(o.url)
    totals.set(o.name, t)
  }
  for (const s of sql.exec<{ origins: string; domains: number }>('SELECT origins, domains FROM replica_sets WHERE domains > 0')) {
    for (const o of listed(s.origins)) add(o, 'domains', s.domains)
  }
  // A pending push: its domain is counted for a replica the target lists and its own set does not (not told yet).
  const waiting = sql.exec<{ target: string; own: string; n: number }>(
    `SELECT t.origins AS target, o.origins AS own, count(*) AS n FROM directory d JOIN replica_sets t ON t.id = d.target JOIN replica_sets o ON o.id = d.set_id
     WHERE d.push_at IS NOT NULL GROUP BY d.target, d.set_id`,
  )
  for (const w of waiting) {
    const own = new Set(listed(w.own).map((o) => o.name))
    for (const o of listed(w.target)) {
      if (own.has(o.name)) continue
      add(o, 'domains', w.n)
      add(o, 'waiting', w.n)
    }
  }
  const states = new Map<string, Record<string, number>>()
  const troubled = sql.exec<{ name: string; url: string | null; state: string; n: number }>(
    `SELECT name, url, state, count(*) AS n FROM status_replicas WHERE state != 'active' OR lag > 0 GROUP BY name, url, state`,
  )
  for (const r of troubled) {
    if (r.state === 'active' || (r.url !== null && !totals.get(r.name)?.urls.has(r.url))) continue
    const s = states.get(r.name) ?? {}
    s[r.state] = (s[r.state] ?? 0) + r.n
    states.set(r.name, s)
  }
  return [...totals]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, t]) => {
      const s = states.get(name) ?? {}
      const joining = (s.joining ?? 0) + (s.lagging ?? 0)
      const resync = (s.stale ?? 0) + (s.suspect ?? 0)
      const upToDate = Math.max(0, t.domains - joining - resync - (s.draining ?? 0) - t.waiting)
      return { name, domains: t.domains, upToDate, joining, resync, waiting: t.waiting }
    })
}

function isOrigins(x: unknown): x is ReplicaOrigins {
  return (
    Array.isArray(x) &&
    x.length > 0 &&
    x.length <= MAX_SET_ORIGINS &&
    x.every((o: { name?: unknown; url?: unknown } | null) => typeof o === 'object' && o !== null && typeof o.name === 'string' && typeof o.url === 'string')
  )
}

function isReplicaSet(x: ReplicaSetView | undefined): x is ReplicaSetView {
  return typeof x === 'object' && x !== null && isOrigins(x.origins) && Number.isSafeInteger(x.at)
}
