/**
 * The alarm's planner (DESIGN §4): what it deletes when records expire, and
 * when it must run next, from the rows that need a wake-up.
 */

/** The alarm is never set closer than this to now, so a row due right away cannot make it spin. */
export const MIN_ALARM_GAP_MS = 1000

/** Relays one alarm run resends at most (the rest wait for the next run). */
export const RESENDS_PER_ALARM = 4

/**
 * Deletes expired records with their reply chunks and relays, in one
 * transaction. Expired means past `expires_at`, not kept by a running lease
 * (a handler longer than the TTL), and not an ordered request still pending:
 * that one is in the log and will be applied, and its TTL counts from its commit.
 *
 * @param storage - the object's storage
 * @param now - the time the alarm runs at
 * @example
 * expireRecords(ctx.storage, Date.now())
 */
export function expireRecords(storage: DurableObjectStorage, now: number): void {
  const sql = storage.sql
  // Written so the indexes serve it; `?1` is now in each statement.
  const expired = `expires_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) AND NOT (state = 'in_flight' AND sequence IS NOT NULL)`
  storage.transactionSync(() => {
    sql.exec(`DELETE FROM reply_chunks WHERE lookup IN (SELECT lookup FROM records WHERE ${expired})`, now)
    sql.exec(`DELETE FROM relays WHERE lookup IN (SELECT lookup FROM records WHERE ${expired})`, now)
    sql.exec(`DELETE FROM records WHERE ${expired}`, now)
  })
}

/**
 * When the alarm must run next: the earliest of a record's expiry (one no
 * lease keeps), a lease that outlives its record's expiry, an ordered
 * request pending past its lease (and its entry's retry time), and the
 * other modules' wake-ups (relays, counters, ordered domains).
 *
 * @param sql - the object's SQL storage
 * @param others - the other modules' next wake-ups, null when none
 * @returns the time, or null when nothing needs the alarm
 * @example
 * const next = nextAlarm(sql, [relays.nextWake(), counters.nextWake(), ordered.nextWake(now)])
 */
export function nextAlarm(sql: SqlStorage, others: readonly (number | null)[]): number | null {
  const at = (query: string): number | null => sql.exec<{ at: number | null }>(query).one().at
  const times = [
    ...others,
    at(`SELECT min(expires_at) AS at FROM records WHERE (lease_until IS NULL OR lease_until <= expires_at) AND NOT (state = 'in_flight' AND sequence IS NOT NULL)`),
    at(`SELECT min(lease_until) AS at FROM records WHERE lease_until > expires_at`),
    at(
      `SELECT min(max(rec.lease_until, coalesce(l.retry_at, 0))) AS at FROM records rec JOIN log l ON l.domain = rec.domain AND l.sequence = rec.sequence
       WHERE rec.state = 'in_flight' AND rec.sequence IS NOT NULL`,
    ),
  ].filter((t): t is number => t !== null)
  return times.length === 0 ? null : Math.min(...times)
}
