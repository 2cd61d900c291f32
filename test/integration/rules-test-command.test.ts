import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleSetError } from '../../detectors';
import { ValidationError } from '../../platform';
import { runRuleTests } from '../../scripts/rule-fixtures';

/**
 * `vigil rules test` over rules and fixtures kept outside the repository, as a detection team's
 * own CI runs it: on the real Redis, one line per case, exit 1 when a case fails.
 */
const RULE = `- id: refund-burst
  version: 1
  name: Many refunds for one consumer
  description: One consumer issues many refunds in a short time.
  severity: high
  type: threshold
  filter:
    all:
      - { field: invocation.resource.path, prefix: /v2/refunds }
      - { field: invocation.status, lt: 400 }
  groupBy: [actor.consumerId]
  window: 10m
  threshold: 3
`;

const refund = '{ family: invocation, actor: { consumerId: shop-7 }, client: { ip: 81.2.69.142 }, invocation: { resource: { api: payments-v2, method: POST, path: /v2/refunds }, route: /v2/refunds, status: 201, latencyMs: 12 } }';

const FIXTURE = (expected: number) => `rule: refund-burst
cases:
  - name: three refunds in a minute fire
    events:
      - { repeat: 3, every: 20s, event: ${refund} }
    expect:
      - { reasonCode: threshold_reached, observedValue: ${expected}, key: { actor.consumerId: shop-7 } }
  - name: two refunds stay quiet
    events:
      - { repeat: 2, every: 20s, event: ${refund} }
    expect: []
`;

describe('vigil rules test with rules and fixtures of your own', () => {
  let folder: string;
  let lines: string[];
  const print = (line: string): void => {
    lines.push(line);
  };

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-rules-test-'));
    mkdirSync(join(folder, 'rules'));
    mkdirSync(join(folder, 'fixtures'));
    writeFileSync(join(folder, 'rules', 'refunds.yaml'), RULE);
    lines = [];
  });

  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('passes when every case gives what it expects, and names the rules without fixtures', async () => {
    writeFileSync(join(folder, 'rules', 'second.yaml'), RULE.replace('id: refund-burst', 'id: refund-burst-two'));
    writeFileSync(join(folder, 'fixtures', 'refund-burst.yaml'), FIXTURE(3));
    const code = await runRuleTests({ rules: [join(folder, 'rules')], fixtures: [join(folder, 'fixtures')], print });
    expect(lines).toEqual([
      expect.stringMatching(/^rule fixtures: 2 rules \(digest [0-9a-f]{16}\), 1 fixture files, 2 cases$/),
      '  ✓ refund-burst  three refunds in a minute fire',
      '  ✓ refund-burst  two refunds stay quiet',
      '2 cases: 2 passed, 0 failed; rules without fixtures: refund-burst-two',
    ]);
    expect(code).toBe(0);
  });

  it('fails a case whose detection differs, naming the first difference', async () => {
    writeFileSync(join(folder, 'fixtures', 'refund-burst.yaml'), FIXTURE(4));
    const code = await runRuleTests({ rules: [join(folder, 'rules')], fixtures: [join(folder, 'fixtures')], print });
    expect(lines.slice(1)).toEqual([
      '  ✗ refund-burst  three refunds in a minute fire',
      '      detection 1: observedValue: expected 4, got 3',
      '  ✓ refund-burst  two refunds stay quiet',
      '2 cases: 1 passed, 1 failed',
    ]);
    expect(code).toBe(1);
  });

  it('fails a fixture whose rule is not in the set, without running it', async () => {
    writeFileSync(join(folder, 'fixtures', 'refund-burst.yaml'), FIXTURE(3).replace('rule: refund-burst', 'rule: refund-bursts'));
    const code = await runRuleTests({ rules: [join(folder, 'rules')], fixtures: [join(folder, 'fixtures')], print });
    expect(lines.slice(1)).toEqual([
      `  ✗ refund-bursts  (${join(folder, 'fixtures', 'refund-burst.yaml')}): no such rule in the set (or it is disabled); its 2 cases did not run`,
      '2 cases: 0 passed, 2 failed; rules without fixtures: refund-burst',
    ]);
    expect(code).toBe(1);
  });

  it('refuses a rule set that does not load, and a fixture that does not parse, naming them', async () => {
    writeFileSync(join(folder, 'rules', 'refunds.yaml'), RULE.replace('lt: 400', 'lt: "400"'));
    await expect(runRuleTests({ rules: [join(folder, 'rules')], fixtures: [join(folder, 'fixtures')], print })).rejects.toThrow(RuleSetError);
    writeFileSync(join(folder, 'rules', 'refunds.yaml'), RULE);
    writeFileSync(join(folder, 'fixtures', 'refund-burst.yaml'), FIXTURE(3).replace('expect: []', 'expected: []'));
    await expect(runRuleTests({ rules: [join(folder, 'rules')], fixtures: [join(folder, 'fixtures')], print })).rejects.toThrow(
      new ValidationError(`invalid fixture ${join(folder, 'fixtures', 'refund-burst.yaml')}`, ['cases.1.expect: Invalid input: expected array, received undefined', 'cases.1: Unrecognized key: "expected"'], 'fixture_invalid'),
    );
  });

  it('runs the shipped pack with its fixtures when given neither', async () => {
    const code = await runRuleTests({ print });
    expect(lines[0]).toMatch(/^rule fixtures: 24 rules \(digest [0-9a-f]{16}\), 24 fixture files, \d+ cases$/);
    expect(lines.at(-1)).toMatch(/^(\d+) cases: \1 passed, 0 failed$/);
    expect(code).toBe(0);
  });
});
