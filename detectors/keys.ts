/** The parts of a rule's state for one key; each is one Redis key. */
export type StatePart = 'window' | 'values' | 'ids' | 'steps' | 'seen' | 'location' | 'fired' | 'surge' | 'surge-hll';

/**
 * The one builder of Redis keys. The braces are a hash tag: every key of one (rule, group key)
 * lands on the same cluster slot, so multi-key scripts stay cluster-safe.
 */
export function stateKey(prefix: string, ruleId: string, keyText: string, part: StatePart): string {
  return `${prefix}:rule:{${ruleId}|${keyText}}:${part}`;
}
