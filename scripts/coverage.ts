import { CoverageCounter, type CoverageReport } from '../detectors';
import { parseReportRange } from './report';
import { replayBatches } from './replay';

/** Options of {@link runCoverage}. */
export interface CoverageOptions {
  /** Start of the range: ISO 8601, or `now`, `now-15m`, `now-2h`, `now-1d`. */
  from: string;
  /** End of the range, in the same forms. */
  to: string;
  /** Rule files and folders. @defaultValue the configured rules */
  rules?: string[];
  /** List files and folders over the shipped lists. @defaultValue the configured lists */
  lists?: string[];
  /** Print JSON instead of the table. @defaultValue false */
  json?: boolean;
}

/** The coverage report with the range it covers. */
export interface CoverageResult extends CoverageReport {
  from: string;
  to: string;
  /** Stored events that no longer pass the schema. */
  refused: number;
}

/**
 * Replays the stored events of a range through the configured rule set (as `vigil replay` does,
 * with no side effects) and counts what each rule's filters and each list's entries matched.
 */
export async function computeCoverage(options: Omit<CoverageOptions, 'json'>): Promise<CoverageResult> {
  const range = parseReportRange(options.from, options.to);
  const from = range.from.toISOString();
  const to = range.to.toISOString();
  let counter: CoverageCounter | undefined;
  const { refused, ruleSet } = await replayBatches(
    { from, to, ...(options.rules ? { rules: options.rules } : {}), ...(options.lists ? { lists: options.lists } : {}) },
    (inputs, detections, batchRuleSet) => {
      counter ??= new CoverageCounter(batchRuleSet);
      counter.add(inputs, detections);
    },
  );
  // No events at all is still a report: every rule never matched.
  counter ??= new CoverageCounter(ruleSet);
  return { from, to, refused, ...counter.report() };
}

const pad = (text: string | number, width: number): string => String(text).padEnd(width);
const padStart = (text: string | number, width: number): string => String(text).padStart(width);

/** The report as the human table `vigil rules coverage` prints. */
export function formatCoverage(result: CoverageResult): string {
  const lines: string[] = [];
  const never = result.rules.filter((rule) => rule.neverMatched);
  lines.push(
    `coverage: ${result.events} events from ${result.from} to ${result.to}${result.refused ? ` (${result.refused} refused)` : ''}, ${result.rules.length} rules, ${result.lists.length} lists (digest ${result.digest})`,
  );
  lines.push('');
  const width = Math.max(28, ...result.rules.map((rule) => rule.ruleId.length + 2));
  lines.push(`${pad('rule', width)}${padStart('matched', 9)}${padStart('detections', 12)}`);
  for (const rule of result.rules) {
    const flag = rule.neverMatched ? '   NEVER MATCHED' : '';
    lines.push(`${pad(rule.ruleId, width)}${padStart(rule.matched, 9)}${padStart(rule.detections, 12)}${flag}`);
    for (const step of rule.steps ?? []) {
      lines.push(`${pad(`  step ${step.name}`, width)}${padStart(step.matched, 9)}${step.matched === 0 ? `${' '.repeat(12)}   step never matched` : ''}`);
    }
  }
  lines.push('');
  const listWidth = Math.max(24, ...result.lists.map((list) => list.listId.length + 2));
  lines.push(`${pad('list', listWidth)}${pad('kind', 10)}${padStart('entries', 7)}  unseen entries`);
  for (const list of result.lists) {
    const entries = Object.keys(list.seen).length;
    const unseen =
      list.referencedBy.length === 0
        ? 'referenced by no rule'
        : entries === 0
          ? 'empty'
          : list.unseen.length === 0
            ? '-'
            : list.unseen.join(', ');
    lines.push(`${pad(list.listId, listWidth)}${pad(list.kind, 10)}${padStart(entries, 7)}  ${unseen}`);
    if (list.referencedBy.length > 0) lines.push(`${' '.repeat(listWidth)}used as ${list.referencedBy.map((use) => `${use.field} in ${use.ruleId}`).join('; ')}`);
  }
  lines.push('');
  const unseen = result.lists.flatMap((list) => (list.referencedBy.length === 0 ? [] : list.unseen.map((entry) => `${list.listId}: ${entry}`)));
  lines.push(never.length === 0 ? 'every rule matched at least one event' : `${never.length} rules never matched: ${never.map((rule) => rule.ruleId).join(', ')}`);
  const used = result.lists.filter((list) => list.referencedBy.length > 0).length;
  lines.push(used === 0 ? 'no list is used by a rule' : unseen.length === 0 ? `every entry of the ${used} lists the rules use was seen` : `${unseen.length} list entries never seen: ${unseen.join(', ')}`);
  return lines.join('\n');
}

/** `vigil rules coverage`: prints the report; exit 0, since it is a report, not a check. */
export async function runCoverage(options: CoverageOptions): Promise<number> {
  const result = await computeCoverage(options);
  console.log(options.json ? JSON.stringify(result, null, 2) : formatCoverage(result));
  return 0;
}
