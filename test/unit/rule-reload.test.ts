import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuleSet, watchRules, type RuleSet } from '../../detectors';

const rule = (id: string, threshold: number): string => `- id: ${id}
  version: 1
  name: Test rule ${id}
  description: A rule for the reload test.
  severity: low
  type: threshold
  groupBy: [actor.userId]
  window: 1m
  threshold: ${threshold}
`;

describe('rule reload without a restart', () => {
  let folder: string;

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-rules-'));
  });

  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  async function nextLoad(loads: RuleSet[], count: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (loads.length < count && Date.now() < deadline) await new Promise((done) => setTimeout(done, 25));
  }

  it('swaps in a valid edit whole, and keeps the running set when an edit is invalid', async () => {
    writeFileSync(join(folder, 'a.yaml'), rule('rule-a', 5));
    const running = loadRuleSet([folder]);
    const loads: RuleSet[] = [];
    const stop = watchRules([folder], (next) => loads.push(next), undefined, 50);
    try {
      writeFileSync(join(folder, 'a.yaml'), rule('rule-a', 7) + rule('rule-b', 3));
      await nextLoad(loads, 1);
      expect(loads).toHaveLength(1);
      expect(loads[0]?.rules.map((compiled) => compiled.rule.id)).toEqual(['rule-a', 'rule-b']);
      expect(loads[0]?.digest).not.toBe(running.digest);

      writeFileSync(join(folder, 'a.yaml'), rule('rule-a', 0));
      await new Promise((done) => setTimeout(done, 400));
      expect(loads).toHaveLength(1);
    } finally {
      stop();
    }
  });
});
