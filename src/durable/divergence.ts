import type { AckQuorum, DivergenceEvent } from './types.js'

/** How the reason of a replica suspected on a divergence begins (it is cleared when more answers overturn it). */
const DIVERGED = 'answered sequence'

/**
 * Compares the replicas' answers to one sequence (seed 004): with three or
 * more the majority decides; with two, the log entry's reference answer
 * (the answer the committed reply was made from) does. A replica that
 * differs becomes `suspect`; one suspected on a comparison that more answers
 * overturn goes back to `lagging`. A tie that nothing breaks (two replicas,
 * or two against two, with no reference yet) under `'majority'` or `'all'`
 * makes every replica in it `suspect` (with `ackQuorum` 1 the client's
 * answer decides, once the commit or the Worker's report sets it): no answer can be trusted over another, so the domain waits for
 * a later answer or an operator (`setReplica`) rather than go on with
 * replicas whose states differ.
 * Synchronous SQL, inside the caller's transaction.
 *
 * @param sql - the object's SQL storage
 * @param domain - the ordering domain
 * @param sequence - the sequence whose answers are compared
 * @param requestId - its request id, for the events
 * @param now - the time of the comparison
 * @param ackQuorum - the domain's `ackQuorum` (read only for a tie: with 1, the client's answer decides once known)
 * @returns the divergences found
 * @example
 * const events = findDivergences(ctx.storage.sql, 'acct-1', 7, requestId, Date.now(), () => 'majority')
 */
export function findDivergences(sql: SqlStorage, domain: string, sequence: number, requestId: string, now: number, ackQuorum: () => AckQuorum): DivergenceEvent[] {
  const reference = referenceOf(sql, domain, sequence)
  const rows = sql.exec<{ origin: string; status: number; digest: string }>('SELECT origin, status, digest FROM results WHERE domain = ? AND sequence = ?', domain, sequence).toArray()
  if (rows.length < 2) return []
  const votes = new Map<string, number>()
  for (const r of rows) votes.set(`${r.status} ${r.digest}`, (votes.get(`${r.status} ${r.digest}`) ?? 0) + 1)
  let expected: string | undefined
  const [top, second] = [...votes.entries()].sort((a, b) => b[1] - a[1])
  if (votes.size === 1) return [] // the replicas agree
  if (rows.length >= 3 && top && (!second || top[1] > second[1])) expected = top[0]
  else if (reference) expected = `${reference.status} ${reference.digest}`
  // With ackQuorum 1 the client's answer decides, once it is known (the commit, or the Worker's report, sets it).
  else if (ackQuorum() === 1) return []
  // Otherwise a tie nothing breaks (two replicas, or two against two, under 'majority' or 'all', and nothing
  // committed): every replica in it is suspect, each against the other answer, until a later answer breaks the tie
  // or an operator clears one.
  const events: DivergenceEvent[] = []
  for (const r of rows) {
    const own = `${r.status} ${r.digest}`
    if (own === expected) {
      // Suspected on a comparison that more answers now overturn: it agrees with the majority after all. It goes
      // back to `lagging`, is fed what it missed meanwhile, and is `active` again once at the head.
      sql.exec(
        `UPDATE replicas SET state = 'lagging', reason = ?, updated_at = ? WHERE domain = ? AND name = ? AND state = 'suspect' AND reason LIKE ?`,
        `cleared: its answer to sequence ${sequence} agrees with the majority`,
        now,
        domain,
        r.origin,
        `${DIVERGED} ${sequence} %`,
      )
      continue
    }
    const state = sql.exec<{ state: string }>('SELECT state FROM replicas WHERE domain = ? AND name = ?', domain, r.origin).toArray()[0]?.state
    if (state === 'suspect') continue
    const [status, digest] = (expected ?? [...votes.keys()].find((v) => v !== own)!).split(' ') as [string, string]
    sql.exec(
      `UPDATE replicas SET state = 'suspect', reason = ?, updated_at = ? WHERE domain = ? AND name = ?`,
      `${DIVERGED} ${sequence} with ${r.status} (body ${r.digest.slice(0, 12)}…), others with ${status} (${digest.slice(0, 12)}…)`,
      now,
      domain,
      r.origin,
    )
    events.push({ domain, sequence, requestId, origin: r.origin, status: r.status, digest: r.digest, expected: { status: Number(status), digest } })
  }
  return events
}

/**
 * A slot's reference answer (status and body digest): the answer its client got, set by the commit or the
 * Worker's report; undefined before either.
 *
 * @example
 * referenceOf(ctx.storage.sql, 'acct-1', 7) // { status: 201, digest: '…' }
 */
export function referenceOf(sql: SqlStorage, domain: string, sequence: number): { status: number; digest: string } | undefined {
  const row = sql
    .exec<{ status: number | null; digest: string | null }>('SELECT ref_status AS status, ref_digest AS digest FROM log WHERE domain = ? AND sequence = ?', domain, sequence)
    .toArray()[0]
  return row?.status != null && row.digest ? { status: row.status, digest: row.digest } : undefined
}
