import type { RelayPlan } from './types.js'

/**
 * Prunes log entries every active replica has acknowledged and that are
 * older than the plan's retention, with their answers (DESIGN §4: storage
 * stays bounded). A lagging or joining replica holds the log back only for
 * the retention (counted from its last progress): past it, it is `stale`.
 *
 * @param sql - the object's SQL storage (call inside a transaction)
 * @param now - ms since epoch
 * @example
 * ctx.storage.transactionSync(() => pruneLog(ctx.storage.sql, Date.now()))
 */
export function pruneLog(sql: SqlStorage, now: number): void {
  for (const { domain, plan } of sql.exec<{ domain: string; plan: string | null }>('SELECT domain, plan FROM domains').toArray()) {
    const retention = plan ? ((JSON.parse(plan) as RelayPlan).logRetentionMs ?? 0) : 0
    // Every active replica must have an entry; a lagging or joining one holds the log back only for the
    // retention period (counted from its last progress): past it, it is `stale`, to be restored from a
    // snapshot of another replica or by an operator, and the log is pruned without it.
    sql.exec(
      `UPDATE replicas SET state = 'stale', reason = ?1 WHERE domain = ?2 AND state IN ('lagging', 'joining') AND updated_at <= ?3`,
      `it made no progress for longer than the log's retention (${retention} ms): restore it from a snapshot of another replica`,
      domain,
      now - Math.max(retention, 60_000),
    )
    const floor = sql
      .exec<{ low: number | null }>(`SELECT min(acked) AS low FROM replicas WHERE domain = ?1 AND state IN ('active', 'lagging', 'joining')`, domain)
      .one().low
    if (floor === null || floor <= 0) continue
    // Never past an entry still pending: its record is not finished and may need it.
    const pending = sql.exec<{ s: number | null }>(`SELECT min(sequence) AS s FROM log WHERE domain = ? AND state = 'pending'`, domain).one().s
    const through =
      sql
        .exec<{ s: number | null }>(
          `SELECT max(sequence) AS s FROM log WHERE domain = ? AND sequence <= ? AND sequence < ? AND state = 'committed' AND created_at <= ?`,
          domain,
          floor,
          pending ?? Number.MAX_SAFE_INTEGER,
          now - retention,
        )
        .one().s ?? 0
    if (through <= 0) continue
    sql.exec('DELETE FROM log WHERE domain = ? AND sequence <= ?', domain, through)
    sql.exec('DELETE FROM results WHERE domain = ? AND sequence <= ?', domain, through)
    sql.exec('UPDATE domains SET pruned_through = max(pruned_through, ?) WHERE domain = ?', through, domain)
  }
}
