/**
 * Duplicates blocked inside the object until the original finishes (seed
 * 003's PA_blockRequest) wait on their lookup key with the shared
 * {@link Waiters}; the origin's receiver uses the same one for ordered
 * requests waiting for their turn.
 */
export { Waiters } from '../shared/waiters.js'
