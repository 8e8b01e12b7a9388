import type { ApplyClaim, Decision, StoredRecord } from './types.js'

/**
 * What a store knows about a claim when it decides: the record of its request
 * id, and for ordered claims the domain's next expected sequence and which
 * request id holds the claim's slot.
 *
 * @example
 * const state: ClaimState = { record: undefined, next: 1, slotOwner: undefined }
 */
export interface ClaimState {
  record: StoredRecord | undefined
  /** The domain's next expected sequence (1 for a new domain); ignored for unordered claims. */
  next: number
  /** The request id recorded in the claim's slot, if any. */
  slotOwner: string | undefined
}

/**
 * The one decision procedure every store uses, so all of them answer alike:
 * an applied request id is replayed (or is a conflict if it arrives with
 * another slot); an ordered claim runs only on its domain's next sequence,
 * reports a gap when ahead, and when behind replays, conflicts, or reports
 * the slot pruned.
 *
 * @param claim - what is asked
 * @param state - what the store holds
 * @returns the decision
 * @example
 * decide({ requestId: 'r-2', domain: 'a1', sequence: 2, noop: false }, { record: undefined, next: 1, slotOwner: undefined })
 * // { kind: 'gap', expected: 1 }
 */
export function decide(claim: ApplyClaim, state: ClaimState): Decision {
  const { record } = state
  if (record) {
    if (record.domain === (claim.domain ?? null) && record.sequence === (claim.sequence ?? null)) return { kind: 'replay', reply: record.reply }
    return {
      kind: 'conflict',
      detail: `Request ${claim.requestId} was already applied as ${slotName(record.domain, record.sequence)}; it cannot be applied again as ${slotName(claim.domain ?? null, claim.sequence ?? null)}.`,
    }
  }
  if (claim.domain === undefined || claim.sequence === undefined) return { kind: 'run' }
  if (claim.sequence > state.next) return { kind: 'gap', expected: state.next }
  if (claim.sequence === state.next) return { kind: 'run' }
  if (state.slotOwner !== undefined) {
    return {
      kind: 'conflict',
      detail: `${slotName(claim.domain, claim.sequence)} was applied as request ${state.slotOwner}, not ${claim.requestId}.`,
    }
  }
  return { kind: 'pruned', next: state.next }
}

function slotName(domain: string | null, sequence: number | null): string {
  return domain === null ? 'an unordered request' : `sequence ${sequence} of domain ${JSON.stringify(domain)}`
}
