import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleSetError, loadRuleSet, watchRules, type RuleSet } from '../../detectors';

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

  it('reloads on every save of a watched file that is replaced, as editors and `sed -i` do, not only the first', async () => {
    const rules = join(folder, 'rules');
    mkdirSync(rules);
    writeFileSync(join(rules, 'a.yaml'), rule('rule-a', 5));
    const file = join(folder, 'watched.yaml');
    writeFileSync(file, rule('rule-a', 5));
    const loads: RuleSet[] = [];
    // The rule file itself, not its folder.
    const stop = watchRules([file], (next) => loads.push(next), undefined, 50);
    try {
      for (const [save, threshold] of [[1, 6], [2, 7], [3, 8]] as const) {
        // A new file renamed over the old one: the watched file's inode changes at every save.
        writeFileSync(`${file}.tmp`, rule('rule-a', threshold));
        renameSync(`${file}.tmp`, file);
        await nextLoad(loads, save);
        expect(loads).toHaveLength(save);
      }
      const last = loads.at(-1)?.rules[0]?.rule;
      expect(last !== undefined && 'threshold' in last ? last.threshold : undefined).toBe(8);
    } finally {
      stop();
    }
  });

  // A ConfigMap mounted as a volume: the file is a symlink through `..data`, and an update writes a
  // new dated folder and renames a new `..data` symlink over the old one. The events name `..data`
  // (and the dated folders), never the file: a watch counting only events that name it never reloaded.
  it('reloads a file named on its own when it comes from a Kubernetes ConfigMap, whose updates swap the ..data symlink', async () => {
    const mount = join(folder, 'config');
    mkdirSync(mount);
    const publish = (dated: string, threshold: number): void => {
      mkdirSync(join(mount, dated));
      writeFileSync(join(mount, dated, 'custom.yaml'), rule('rule-a', threshold));
      symlinkSync(dated, join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    };
    publish('..2026_12_06', 5);
    symlinkSync(join('..data', 'custom.yaml'), join(mount, 'custom.yaml'));
    const file = join(mount, 'custom.yaml');
    expect(loadRuleSet([file]).rules).toHaveLength(1);
    const loads: RuleSet[] = [];
    const stop = watchRules([file], (next) => loads.push(next), undefined, 50);
    try {
      publish('..2026_12_07', 6);
      rmSync(join(mount, '..2026_12_06'), { recursive: true });
      await nextLoad(loads, 1);
      expect(loads).toHaveLength(1);
      publish('..2026_12_08', 7);
      await nextLoad(loads, 2);
      expect(loads).toHaveLength(2);
      const last = loads.at(-1)?.rules[0]?.rule;
      expect(last !== undefined && 'threshold' in last ? last.threshold : undefined).toBe(7);
      // Events that leave the file as it was (another key of the ConfigMap, a stray file) reload nothing.
      writeFileSync(join(mount, 'other.txt'), 'not a rule');
      await new Promise((done) => setTimeout(done, 300));
      expect(loads).toHaveLength(2);
    } finally {
      stop();
    }
  });

  it('refuses a folder that holds no rule file, at a load and at a reload, keeping the running rules', async () => {
    const empty = join(folder, 'empty');
    mkdirSync(empty);
    expect(() => loadRuleSet([empty])).toThrow(RuleSetError);
    expect(() => loadRuleSet([empty])).toThrow(`${empty} at (root): holds no rule file (.yaml, .yml or .json); to run without rules, set VIGIL_DETECTION=off`);
    // Files that hold no enabled rule are no rule set either: `[]`, or every rule disabled.
    const none = join(folder, 'none');
    mkdirSync(none);
    writeFileSync(join(none, 'empty.yaml'), '[]\n');
    expect(() => loadRuleSet([none])).toThrow(`${none} at (root): holds no enabled rule (the files hold none, or every rule has enabled: false); to run without rules, set VIGIL_DETECTION=off`);
    writeFileSync(join(none, 'empty.yaml'), `${rule('rule-off', 5)}  enabled: false\n`);
    expect(() => loadRuleSet([none])).toThrow('holds no enabled rule');

    writeFileSync(join(folder, 'a.yaml'), rule('rule-a', 5));
    const loads: RuleSet[] = [];
    const refused: unknown[] = [];
    const logger = { info: () => undefined, error: (fields: unknown) => void refused.push(fields) };
    const stop = watchRules([folder], (next) => loads.push(next), logger as never, 50);
    try {
      // Moved aside mid-edit: the folder is empty for a moment.
      renameSync(join(folder, 'a.yaml'), join(folder, 'a.yaml.bak'));
      await new Promise((done) => setTimeout(done, 400));
      expect(loads).toHaveLength(0);
      expect(refused.length).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });
});
