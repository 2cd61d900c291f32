import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  RuleSetError,
  geoVelocityType,
  isOfType,
  loadRuleSet,
  ruleSchema,
  sequenceType,
  type BaseRule,
  type CompiledRule,
  type DetectionInput,
  type RuleProblem,
  type RuleSet,
  type RuleType,
} from '../../detectors';
import { VigilError } from '../../platform';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

const DEFAULT_RULES = join(__dirname, '..', '..', 'detectors', 'rules', 'default');

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'vigil-rules-'));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Writes files into this test's folder; returns their paths in the order given. */
function write(files: Record<string, string>): string[] {
  return Object.entries(files).map(([name, text]) => {
    const path = join(folder, name);
    writeFileSync(path, text);
    return path;
  });
}

/** The problems of a rule set that must be refused. */
function problemsOf(paths: readonly string[]): readonly RuleProblem[] {
  try {
    loadRuleSet(paths);
  } catch (error) {
    if (error instanceof RuleSetError) return error.problems;
    throw error;
  }
  throw new Error('expected the rule set to be refused');
}

/** A valid threshold rule; tests change one field of it. */
function thresholdRule(changes: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'too-many-failures',
    version: 1,
    name: 'Too many failures',
    description: 'Failed logins for one user.',
    severity: 'medium',
    type: 'threshold',
    filter: { field: 'policy.outcome', equals: 'fail' },
    groupBy: ['actor.userId'],
    window: '5m',
    threshold: 10,
    ...changes,
  };
}

const userRule = {
  version: 1,
  description: 'A rule about one user.',
  severity: 'low',
  groupBy: ['actor.userId'],
};
const newDeviceRule = { ...userRule, id: 'new-device', name: 'New device', type: 'new_value', field: 'device.deviceId' };

/** What a rule's type compiled for it (step predicates, an allowlist), checked against the expected type. */
function extrasOf<R extends BaseRule, Extras, Extra>(compiled: CompiledRule, ruleType: RuleType<R, Extras, Extra>): Extras {
  if (!isOfType(compiled, ruleType)) throw new Error(`${compiled.rule.id} is not a ${ruleType.type} rule`);
  return compiled.extras;
}

function ruleById(ruleSet: RuleSet, id: string): CompiledRule {
  const found = ruleSet.rules.find((compiled) => compiled.rule.id === id);
  if (!found) throw new Error(`no rule ${id}`);
  return found;
}

describe('the default rule pack', () => {
  const ruleSet = loadRuleSet([DEFAULT_RULES]);

  it('loads all four files, every rule enabled', () => {
    expect(ruleSet.files.map((file) => file.slice(DEFAULT_RULES.length + 1))).toStrictEqual([
      'authentication.yaml',
      'authorization.yaml',
      'denial-of-service.yaml',
      'device-and-location.yaml',
    ]);
    expect(ruleSet.rules.map((compiled) => compiled.rule.id)).toStrictEqual([
      'authn-failures-per-user',
      'authn-failures-per-user-slow',
      'authn-failures-per-ip',
      'credential-stuffing',
      'credential-stuffing-trusted-egress',
      'account-takeover-sequence',
      'credential-stuffing-then-success',
      'basic-auth-on-2fa-resource',
      'authz-failure-privileged-scope',
      'enumeration-per-consumer',
      'enumeration-per-ip',
      'json-threat-violation',
      'xml-threat-violation',
      'rate-limit-storm-per-consumer',
      'rate-limit-storm-per-ip',
      'request-flood-per-endpoint',
      'request-spike-per-consumer',
      'distributed-flood-per-endpoint',
      'error-surge-per-endpoint',
      'latency-surge-per-endpoint',
      'impossible-travel',
      'new-device-for-user',
      'new-country-for-user',
      'new-device-then-sensitive-write',
    ]);
    expect(ruleSet.rules.every((compiled) => compiled.rule.enabled)).toBe(true);
  });

  it('has a stable digest of its content', () => {
    expect(ruleSet.digest).toMatch(/^[0-9a-f]{16}$/);
    expect(loadRuleSet([DEFAULT_RULES]).digest).toBe(ruleSet.digest);
  });

  it('parses durations and fills defaults', () => {
    const perUser = ruleById(ruleSet, 'authn-failures-per-user').rule;
    expect(perUser).toMatchObject({ type: 'threshold', window: 300_000, threshold: 10, noun: 'failed logins', onStateUnavailable: 'pause' });
    expect(ruleById(ruleSet, 'new-device-for-user').rule).toMatchObject({ horizon: 2_592_000_000, minKnownValues: 1, noun: 'matching events' });
    expect(ruleById(ruleSet, 'impossible-travel').rule).toMatchObject({ maxSpeedKmh: 900, minDistanceKm: 300, horizon: 86_400_000 });
    expect(ruleById(ruleSet, 'account-takeover-sequence').rule).toMatchObject({ steps: [{ count: 5 }, { count: 1 }] });
  });

  it('compiles step filters, the allowlist and the two dependent rules', () => {
    expect(extrasOf(ruleById(ruleSet, 'account-takeover-sequence'), sequenceType)).toHaveLength(2);
    expect(extrasOf(ruleById(ruleSet, 'impossible-travel'), geoVelocityType)).toBeDefined();
    expect(ruleById(ruleSet, 'authn-failures-per-user').extras).toBeUndefined();
    const dependent = ruleSet.rules.filter((compiled) => compiled.dependsOn.length > 0);
    expect(dependent.map((compiled) => [compiled.rule.id, compiled.dependsOn])).toStrictEqual([
      ['credential-stuffing-then-success', ['credential-stuffing', 'credential-stuffing-trusted-egress']],
      ['new-device-then-sensitive-write', ['new-device-for-user']],
    ]);
  });

  it('carries MITRE technique ids in the tags of every rule', () => {
    for (const compiled of ruleSet.rules) expect(compiled.rule.tags.some((tag) => /^T\d{4}(\.\d{3})?$/.test(tag))).toBe(true);
  });

  describe('filters, on example events', () => {
    const matches = (id: string, input: DetectionInput): boolean => ruleById(ruleSet, id).matches(input);

    it('authn-failures-per-user: failed authentications only', () => {
      expect(matches('authn-failures-per-user', { event: event(policyEvent()) })).toBe(true);
      expect(matches('authn-failures-per-user', { event: event(policyEvent(), { 'policy.outcome': 'pass' }) })).toBe(false);
      expect(matches('authn-failures-per-user', { event: event(policyEvent(), { 'policy.kind': 'authz' }) })).toBe(false);
    });

    it('authz-failure-privileged-scope: a denied admin scope, at either end of the scope', () => {
      const denied = (scopes: string[]): DetectionInput => ({ event: event(policyEvent(), { 'policy.kind': 'authz', 'policy.scopes': scopes }) });
      expect(matches('authz-failure-privileged-scope', denied(['payments:write', 'admin:users']))).toBe(true);
      expect(matches('authz-failure-privileged-scope', denied(['users:admin']))).toBe(true);
      expect(matches('authz-failure-privileged-scope', denied(['payments:write']))).toBe(false);
      expect(matches('authz-failure-privileged-scope', denied(['administrator']))).toBe(false);
    });

    it('basic-auth-on-2fa-resource: basic auth that passed on payments or admin', () => {
      const basic = event(policyEvent(), { 'policy.outcome': 'pass', 'policy.authContext': 'basic' });
      expect(matches('basic-auth-on-2fa-resource', { event: basic })).toBe(true);
      expect(matches('basic-auth-on-2fa-resource', { event: event(basic, { 'policy.group': 'reports' }) })).toBe(false);
      expect(matches('basic-auth-on-2fa-resource', { event: event(basic, { 'policy.authContext': 'oauth2' }) })).toBe(false);
    });

    it('enumeration-per-consumer: 401, 403 and 404 responses', () => {
      expect(matches('enumeration-per-consumer', { event: event(invocationEvent()) })).toBe(true);
      expect(matches('enumeration-per-consumer', { event: event(invocationEvent(), { 'invocation.status': 500 }) })).toBe(false);
      expect(matches('enumeration-per-consumer', { event: event(policyEvent()) })).toBe(false);
    });

    it('new-country-for-user: located events only', () => {
      expect(matches('new-country-for-user', { event: event(policyEvent()), geo: { country: 'GB' } })).toBe(true);
      expect(matches('new-country-for-user', { event: event(policyEvent()) })).toBe(false);
    });

    it('new-device-then-sensitive-write: a new device, then a successful write to payments or accounts by the proven user', () => {
      const [newDevice, write] = extrasOf(ruleById(ruleSet, 'new-device-then-sensitive-write'), sequenceType);
      if (!newDevice || !write) throw new Error('expected two steps');
      expect(newDevice({ event: event(deviceEvent()), detectedBy: new Set(['new-device-for-user']) })).toBe(true);
      expect(newDevice({ event: event(deviceEvent()) })).toBe(false);
      const post = event(invocationEvent(), { 'invocation.resource.method': 'POST', 'invocation.status': 201, 'actor.userId': 'u-1' });
      expect(write({ event: post })).toBe(true);
      // A request whose authentication failed proves no user, whatever it names.
      expect(write({ event: post, correlated: { request: { policies: { authn: 'fail' }, failedPolicies: ['authn'] } } })).toBe(false);
      expect(write({ event: event(post, { 'invocation.status': 400 }) })).toBe(false);
      expect(write({ event: event(post, { 'invocation.resource.method': 'GET' }) })).toBe(false);
    });
  });
});

describe('loadRuleSet: file forms', () => {
  it('loads a YAML list, a JSON list, and { rules: [...] } in either', () => {
    const paths = write({
      'a.yaml': stringify([thresholdRule({ id: 'rule-yaml-list' })]),
      'b.json': JSON.stringify([thresholdRule({ id: 'rule-json-list' })]),
      'c.yml': stringify({ rules: [thresholdRule({ id: 'rule-yaml-object' })] }),
      'd.JSON': JSON.stringify({ rules: [thresholdRule({ id: 'rule-json-object' })] }),
    });
    const ruleSet = loadRuleSet(paths);
    expect(ruleSet.rules.map((compiled) => compiled.rule.id)).toStrictEqual(['rule-yaml-list', 'rule-json-list', 'rule-yaml-object', 'rule-json-object']);
    expect(ruleSet.rules.map((compiled) => compiled.file)).toStrictEqual(paths);
  });

  it('reads the rule files of a folder, sorted, and skips other files', () => {
    write({
      'b.yaml': stringify([thresholdRule({ id: 'rule-b' })]),
      'a.json': JSON.stringify([thresholdRule({ id: 'rule-a' })]),
      'README.md': '# not rules',
      'notes.txt': 'not: [rules',
    });
    const ruleSet = loadRuleSet([folder]);
    expect(ruleSet.rules.map((compiled) => compiled.rule.id)).toStrictEqual(['rule-a', 'rule-b']);
    expect(ruleSet.files).toStrictEqual([join(folder, 'a.json'), join(folder, 'b.yaml')]);
  });

  it('keeps a disabled rule out of the set, but its id stays taken', () => {
    const [file] = write({ 'a.yaml': stringify([thresholdRule({ enabled: false }), thresholdRule({ id: 'other-rule' })]) });
    if (file === undefined) throw new Error('no file');
    expect(loadRuleSet([file]).rules.map((compiled) => compiled.rule.id)).toStrictEqual(['other-rule']);
    write({ 'b.yaml': stringify([thresholdRule()]) });
    expect(problemsOf([folder]).map((problem) => problem.message)).toStrictEqual([expect.stringMatching(/^duplicate rule id/)]);
  });

  it('changes the digest when a rule changes', () => {
    const [file] = write({ 'a.yaml': stringify([thresholdRule()]) });
    if (file === undefined) throw new Error('no file');
    const before = loadRuleSet([file]).digest;
    writeFileSync(file, stringify([thresholdRule({ threshold: 11 })]));
    expect(loadRuleSet([file]).digest).not.toBe(before);
  });
});

describe('loadRuleSet: problems name the file, the rule and the field', () => {
  it.each([
    ['threshold: 0', { threshold: 0 }, '[0].threshold', /expected number to be >=1/],
    ['window: 5 minutes', { window: '5 minutes' }, '[0].window', /expected a duration/],
    ['window: 0s', { window: '0s' }, '[0].window', /positive/],
    ['a bad severity', { severity: 'urgent' }, '[0].severity', /low.*medium.*high.*critical/],
    ['an empty groupBy', { groupBy: [] }, '[0].groupBy', /.+/],
    ['a bad regex deep in the filter', { filter: { all: [{ field: 'a', equals: 1 }, { field: 'b', regex: '(' }] } }, '[0].filter.all.1.regex', /not a valid regular expression/],
    ['an unknown rule type', { type: 'anomaly' }, '[0].type', /.+/],
  ])('%s', (_name, changes, path, message) => {
    const [file] = write({ 'rules.yaml': stringify([thresholdRule(changes)]) });
    const problems = problemsOf([folder]);
    expect(problems).toStrictEqual([{ file, ruleId: 'too-many-failures', path, message: expect.stringMatching(message) as unknown }]);
  });

  it('names the index of the rule in its file, and a misspelt key', () => {
    const [file] = write({ 'rules.yaml': stringify([thresholdRule({ id: 'first-rule' }), thresholdRule({ id: 'second-rule', treshold: 3 })]) });
    expect(problemsOf([folder])).toStrictEqual([{ file, ruleId: 'second-rule', path: '[1]', message: expect.stringContaining('treshold') as unknown }]);
  });

  it('names a rule without an id by its index only', () => {
    const rule = thresholdRule();
    delete rule.id;
    write({ 'rules.yaml': stringify([rule]) });
    const [problem] = problemsOf([folder]);
    expect(problem?.ruleId).toBeUndefined();
    expect(problem?.path).toBe('[0].id');
  });

  it('names the second file of a duplicate id, and the first', () => {
    const [first, second] = write({ 'a.yaml': stringify([thresholdRule()]), 'b.json': JSON.stringify([thresholdRule({ threshold: 20 })]) });
    const problems = problemsOf([folder]);
    expect(problems).toStrictEqual([{ file: second, ruleId: 'too-many-failures', path: '[0].id', message: expect.stringContaining(String(first)) as unknown }]);
  });

  it('refuses a duplicate id within one file', () => {
    const [file] = write({ 'a.yaml': stringify([thresholdRule(), thresholdRule()]) });
    expect(problemsOf([folder])).toStrictEqual([{ file, ruleId: 'too-many-failures', path: '[1].id', message: expect.stringMatching(/^duplicate rule id/) as unknown }]);
  });

  it('refuses a detectedBy that names a rule not in the set', () => {
    const [file] = write({ 'a.yaml': stringify([thresholdRule({ filter: { detectedBy: 'no-such-rule' } })]) });
    const problems = problemsOf([folder]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, ruleId: 'too-many-failures', path: expect.stringMatching(/detectedBy$/) as unknown });
    expect(problems[0]?.message).toContain('no-such-rule');
  });

  it('refuses a detectedBy in a sequence step that names a disabled rule', () => {
    const sequence = {
      id: 'device-then-write',
      version: 1,
      name: 'Device then write',
      description: 'A new device, then a write.',
      severity: 'high',
      type: 'sequence',
      groupBy: ['actor.userId'],
      window: '10m',
      steps: [
        { name: 'new device', filter: { detectedBy: 'new-device' } },
        { name: 'write', filter: { field: 'invocation.resource.method', equals: 'POST' } },
      ],
    };
    const [file] = write({ 'a.yaml': stringify([{ ...newDeviceRule, enabled: false }, sequence]) });
    const problems = problemsOf([folder]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, ruleId: 'device-then-write', path: expect.stringMatching(/detectedBy$/) as unknown });
    expect(problems[0]?.message).toContain('new-device');
    // The same set with the rule enabled loads, the sequence depending on it.
    writeFileSync(String(file), stringify([newDeviceRule, sequence]));
    expect(ruleById(loadRuleSet([folder]), 'device-then-write').dependsOn).toStrictEqual(['new-device']);
  });

  it('refuses a detectedBy on a rule that itself uses detectedBy (one level only)', () => {
    write({
      'a.yaml': stringify([
        newDeviceRule,
        thresholdRule({ id: 'after-new-device', filter: { detectedBy: 'new-device' } }),
        thresholdRule({ id: 'after-after', filter: { detectedBy: 'after-new-device' } }),
      ]),
    });
    const problems = problemsOf([folder]);
    expect(problems.map((problem) => [problem.ruleId, problem.message])).toStrictEqual([['after-after', expect.stringContaining('one level only')]]);
  });

  // Each loaded and never fired: a key, a remembered field or a step of a family the rule's filter keeps out.
  it('refuses a groupBy, a field and a step no event the rule\'s filter passes has, naming the file, the rule and the setting', () => {
    const [file] = write({
      'a.yaml': stringify([
        thresholdRule({ id: 'policy-by-route', filter: { field: 'family', equals: 'policy' }, groupBy: ['invocation.route'] }),
        { ...newDeviceRule, id: 'device-of-call', filter: { field: 'family', equals: 'invocation' } },
        {
          ...userRule,
          id: 'failure-then-5xx',
          name: 'Failure then 5xx',
          type: 'sequence',
          filter: { field: 'family', equals: 'policy' },
          window: '10m',
          steps: [
            { name: 'failure', filter: { field: 'policy.outcome', equals: 'fail' } },
            { name: '5xx', filter: { field: 'invocation.status', gte: 500 } },
          ],
        },
      ]),
    });
    const problems = problemsOf([folder]);
    expect(problems.map((problem) => [problem.file, problem.ruleId, problem.path])).toStrictEqual([
      [file, 'policy-by-route', '[0].groupBy.0'],
      [file, 'device-of-call', '[1].field'],
      [file, 'failure-then-5xx', '[2].steps.1.filter.field'],
    ]);
    expect(problems.map((problem) => problem.message)).toStrictEqual([
      expect.stringMatching(/^invocation\.route is a field of invocation events only, and the rule's filter lets through policy events only \(family policy\): .*never fires$/),
      expect.stringMatching(/^device\.deviceId is a field of device events only, and the rule's filter lets through invocation events only \(family invocation\): .*never fires$/),
      expect.stringMatching(/^invocation\.status is a field of invocation events only, .*this step never matches/),
    ]);
  });

  // The engine skips an event without a key field before trying the steps: the step never matched.
  it('refuses a sequence step that only events without a groupBy field can match, naming the file, the rule, the step and the field', () => {
    const [file] = write({
      'a.yaml': stringify([
        {
          ...userRule,
          id: 'failure-then-5xx-by-route',
          name: 'Failure then 5xx on one route',
          type: 'sequence',
          groupBy: ['invocation.route'],
          window: '10m',
          steps: [
            { name: 'failure', filter: { field: 'policy.outcome', equals: 'fail' } },
            { name: '5xx', filter: { field: 'invocation.status', gte: 500 } },
          ],
        },
      ]),
    });
    expect(problemsOf([folder])).toStrictEqual([
      {
        file,
        ruleId: 'failure-then-5xx-by-route',
        path: '[0].steps.0.filter',
        message: expect.stringMatching(/^invocation\.route \(groupBy\.0\) is a field of invocation events only, and step 0 "failure" matches policy events only .*the sequence never completes$/) as unknown,
      },
    ]);
  });

  it('refuses YAML that cannot be parsed, naming the file', () => {
    const [file] = write({ 'broken.yaml': 'rules: [ { id: a\n  - : :' });
    expect(problemsOf([folder])).toStrictEqual([{ file, path: '', message: expect.stringMatching(/^cannot be parsed: /) as unknown }]);
  });

  it('refuses JSON that cannot be parsed, naming the file', () => {
    const [file] = write({ 'broken.json': '[{"id": "a",]' });
    expect(problemsOf([folder])).toStrictEqual([{ file, path: '', message: expect.stringMatching(/^cannot be parsed: /) as unknown }]);
  });

  // JSON.parse keeps the last of two keys without a word: a rule with two filters validated and
  // fired on the second. The same rule in YAML is refused (Map keys must be unique).
  it('refuses a key written twice in one JSON object, naming the file, the rule and the key, as YAML refuses it', () => {
    const rule = JSON.stringify(thresholdRule({ filter: { field: 'policy.outcome', equals: 'fail' } }));
    const twice = rule.replace('"filter":', '"filter":{"field":"policy.kind","equals":"authn"},"filter":');
    const [file] = write({ 'twice.json': `[${twice}]` });
    expect(problemsOf([folder])).toStrictEqual([
      { file, ruleId: 'too-many-failures', path: '[0].filter', message: 'the key filter is written twice in one object; JSON would keep the last one without a word (YAML refuses it too): keep one' },
    ]);
    // Deeper, in the { rules: [...] } form, and spelt with an escape: still one key.
    writeFileSync(String(file), JSON.stringify({ rules: [thresholdRule({ filter: { all: [{ field: 'policy.outcome', equals: 'fail' }] } })] }).replace('"equals":"fail"', '"equals":"fail","\\u0065quals":"pass"'));
    expect(problemsOf([folder]).map(({ ruleId, path, message }) => [ruleId, path, message.slice(0, 30)])).toStrictEqual([['too-many-failures', '[0].filter.all.0.equals', 'the key equals is written twic']]);
    // Two rules in a file, each with its own keys, are not a duplicate; neither is a key repeated in text.
    writeFileSync(String(file), JSON.stringify([thresholdRule({ id: 'rule-one', description: '"filter":"x"' }), thresholdRule({ id: 'rule-two' })]));
    expect(loadRuleSet([folder]).rules.map((compiled) => compiled.rule.id)).toStrictEqual(['rule-one', 'rule-two']);
  });

  // Windows editors and PowerShell 5.1 (Set-Content -Encoding UTF8) begin a file with U+FEFF.
  it('reads a YAML or JSON file that starts with a byte-order mark', () => {
    write({ 'a.yaml': `\uFEFF${stringify([thresholdRule({ id: 'rule-yaml-bom' })])}`, 'b.json': `\uFEFF${JSON.stringify([thresholdRule({ id: 'rule-json-bom' })])}` });
    expect(loadRuleSet([folder]).rules.map((compiled) => compiled.rule.id)).toStrictEqual(['rule-yaml-bom', 'rule-json-bom']);
  });

  it.each([
    ['a single rule instead of a list', stringify(thresholdRule())],
    ['rules that are not a list', stringify({ rules: thresholdRule() })],
    ['a list next to another key', stringify({ rules: [], version: 2 })],
    ['a scalar', 'just text'],
  ])('refuses a file holding %s', (_name, text) => {
    const [file] = write({ 'odd.yaml': text });
    expect(problemsOf([folder])).toStrictEqual([{ file, path: '', message: 'expected a list of rules, or { rules: [...] }' }]);
  });

  it('refuses a path that does not exist', () => {
    const missing = join(folder, 'missing');
    expect(problemsOf([missing])).toStrictEqual([{ file: missing, path: '', message: 'no such file or folder' }]);
  });

  it('lists every problem of every file at once, and refuses the whole set', () => {
    const [a, b, c] = write({
      'a.yaml': stringify([thresholdRule({ threshold: 0, window: '5 minutes' }), thresholdRule({ id: 'good-rule' })]),
      'b.yaml': '{ unclosed',
      'c.json': JSON.stringify([thresholdRule({ id: 'bad-severity', severity: 'urgent' })]),
    });
    let caught: unknown;
    try {
      loadRuleSet([folder]);
    } catch (error) {
      caught = error;
    }
    if (!(caught instanceof RuleSetError)) throw new Error('expected a RuleSetError');
    expect(caught.problems.map((problem) => [problem.file, problem.ruleId, problem.path])).toStrictEqual([
      [a, 'too-many-failures', '[0].window'],
      [a, 'too-many-failures', '[0].threshold'],
      [b, undefined, ''],
      [c, 'bad-severity', '[0].severity'],
    ]);
    expect(caught).toBeInstanceOf(VigilError);
    expect(caught.code).toBe('rules_invalid');
    expect(caught.retriable).toBe(false);
    expect(caught.issues[0]).toBe(`${a} rule too-many-failures at ${caught.problems[0]?.path}: ${caught.problems[0]?.message}`);
    expect(caught.issues.find((issue) => issue.startsWith(String(b)))).toMatch(/ at \(root\): cannot be parsed/);
  });
});

describe('ruleSchema', () => {
  it('refuses an id that is not lower-case words and digits', () => {
    for (const id of ['ab', 'Too-Many', 'too_many', '-leading-dash']) expect(ruleSchema.safeParse(thresholdRule({ id })).success).toBe(false);
    expect(ruleSchema.safeParse(thresholdRule({ id: 'abc' })).success).toBe(true);
  });

  it('needs at least two distinct values for a cardinality rule and two steps for a sequence', () => {
    const cardinality = thresholdRule({ type: 'cardinality', field: 'actor.userId' });
    expect(ruleSchema.safeParse({ ...cardinality, threshold: 2 }).success).toBe(true);
    expect(ruleSchema.safeParse({ ...cardinality, threshold: 1 }).success).toBe(false);
    const step = { name: 'fail', filter: { field: 'policy.outcome', equals: 'fail' } };
    const sequence = thresholdRule({ type: 'sequence' });
    delete sequence.threshold;
    expect(ruleSchema.safeParse({ ...sequence, steps: [step, step] }).success).toBe(true);
    expect(ruleSchema.safeParse({ ...sequence, steps: [step] }).success).toBe(false);
  });

  it('refuses a geo_velocity allowlist entry that is not a CIDR range', () => {
    const geo = { ...userRule, id: 'impossible-travel', name: 'Impossible travel', type: 'geo_velocity' };
    expect(ruleSchema.safeParse({ ...geo, allowlistCidrs: ['10.0.0.0/8', '2001:db8::/32'] }).success).toBe(true);
    expect(ruleSchema.safeParse({ ...geo, allowlistCidrs: ['vpn.example.com'] }).success).toBe(false);
  });
});
