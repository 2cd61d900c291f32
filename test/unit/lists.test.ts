import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoverageCounter,
  DEFAULT_LISTS_PATH,
  DEFAULT_RULES_PATH,
  RuleSetError,
  compileFilter,
  compileList,
  filterSchema,
  listReferencesOf,
  loadLists,
  loadRuleSet,
  watchRules,
  type DetectionInput,
  type RuleProblem,
  type RuleSet,
} from '../../detectors';
import { eventSchema, type Detection, type VigilEvent } from '../../schemas';
import { main } from '../../scripts/cli';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}
const policy = (changes: Record<string, unknown> = {}): DetectionInput => ({ event: event(policyEvent(), changes) });
const invocation = (changes: Record<string, unknown> = {}): DetectionInput => ({ event: event(invocationEvent(), changes) });

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'vigil-lists-'));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(folder, name);
  writeFileSync(path, text);
  return path;
}

/** The problems of a set that must be refused. */
function problemsOf(load: () => unknown): readonly RuleProblem[] {
  try {
    load();
  } catch (error) {
    if (error instanceof RuleSetError) return error.problems;
    throw error;
  }
  throw new Error('expected the rule set to be refused');
}

const list = (id: string, kind: string, values: unknown[], extra = ''): string =>
  `  - id: ${id}\n    description: A list for the test.\n    kind: ${kind}\n    values: ${JSON.stringify(values)}\n${extra}`;
const listFile = (...lists: string[]): string => `lists:\n${lists.join('')}`;

const matchRule = (id: string, filter: object): string =>
  JSON.stringify([{ id, version: 1, name: `Rule ${id}`, description: 'A rule for the list tests.', severity: 'high', type: 'match', filter }]);

describe('inList conditions', () => {
  const lists = new Map([
    ['groups', compileList({ id: 'groups', kind: 'keyword', description: 'groups', values: ['payments', 'admin'] }, [])],
    ['offices', compileList({ id: 'offices', kind: 'cidr', description: 'offices', values: ['203.0.113.0/24', '2001:db8::/32'] }, [])],
    ['scopes', compileList({ id: 'scopes', kind: 'wildcard', description: 'scopes', values: ['admin:*', '*:admin'] }, [])],
    ['codes', compileList({ id: 'codes', kind: 'keyword', description: 'codes', values: ['403'] }, [])],
  ]);
  const matches = (filter: unknown, input: DetectionInput): boolean => compileFilter(filterSchema.parse(filter), lists)(input);

  it('keyword: exact membership of the value', () => {
    expect(matches({ field: 'policy.group', inList: 'groups' }, policy({ 'policy.group': 'payments' }))).toBe(true);
    expect(matches({ field: 'policy.group', inList: 'groups' }, policy({ 'policy.group': 'Payments' }))).toBe(false);
    expect(matches({ field: 'policy.group', inList: 'groups' }, policy({ 'policy.group': 'payments-eu' }))).toBe(false);
    // A number field is compared by its text: the list entry "403" holds the status 403.
    expect(matches({ field: 'invocation.status', inList: 'codes' }, invocation({ 'invocation.status': 403 }))).toBe(true);
    expect(matches({ field: 'invocation.status', inList: 'codes' }, invocation({ 'invocation.status': 404 }))).toBe(false);
  });

  it('cidr: an address inside any range, IPv4-mapped IPv6 included; never a non-address', () => {
    expect(matches({ field: 'client.ip', inList: 'offices' }, policy({ 'client.ip': '203.0.113.77' }))).toBe(true);
    expect(matches({ field: 'client.ip', inList: 'offices' }, policy({ 'client.ip': '::ffff:203.0.113.9' }))).toBe(true);
    expect(matches({ field: 'client.ip', inList: 'offices' }, policy({ 'client.ip': '2001:db8::1' }))).toBe(true);
    expect(matches({ field: 'client.ip', inList: 'offices' }, policy({ 'client.ip': '198.51.100.1' }))).toBe(false);
    expect(matches({ field: 'policy.group', inList: 'offices' }, policy())).toBe(false);
  });

  it('wildcard: * is any run of characters, anchored at both ends; any element of a list field', () => {
    expect(matches({ field: 'policy.scopes', inList: 'scopes' }, policy({ 'policy.scopes': ['read', 'admin:write'] }))).toBe(true);
    expect(matches({ field: 'policy.scopes', inList: 'scopes' }, policy({ 'policy.scopes': ['payments:admin'] }))).toBe(true);
    expect(matches({ field: 'policy.scopes', inList: 'scopes' }, policy({ 'policy.scopes': ['x-admin:write', 'payments:administrator'] }))).toBe(false);
  });

  it('is false on a missing field, and composes with not', () => {
    expect(matches({ field: 'actor.tenantId', inList: 'groups' }, invocation())).toBe(false);
    expect(matches({ not: { field: 'policy.group', inList: 'groups' } }, policy({ 'policy.group': 'public' }))).toBe(true);
  });

  it('refuses a list that is not defined when the filter is compiled, not per event', () => {
    expect(() => compileFilter(filterSchema.parse({ all: [{ field: 'policy.group', inList: 'nowhere' }] }), lists)).toThrow(
      'names list nowhere, which is not defined (lists: groups, offices, scopes, codes)',
    );
  });

  it('finds every inList of a rule, in steps and nested filters', () => {
    expect(
      listReferencesOf({ filter: { all: [{ field: 'a', inList: 'x' }] }, steps: [{ filter: { not: { field: 'b', inList: 'y' } } }] }),
    ).toStrictEqual([
      { path: 'filter.all.0.inList', field: 'a', list: 'x' },
      { path: 'steps.0.filter.not.inList', field: 'b', list: 'y' },
    ]);
  });
});

describe('list files', () => {
  it('ships the lists the default pack names, keeping the groups and scopes of before', () => {
    const { lists, problems } = loadLists(DEFAULT_LISTS_PATH);
    expect(problems).toStrictEqual([]);
    expect(Object.fromEntries([...lists.values()].map((item) => [item.id, [item.kind, ...item.values]]))).toStrictEqual({
      'groups-requiring-2fa': ['keyword', 'payments', 'admin'],
      'sensitive-groups': ['keyword', 'payments', 'accounts'],
      'privileged-scopes': ['wildcard', 'admin:*', '*:admin'],
      'trusted-egress': ['cidr'],
      'partner-consumers': ['keyword'],
    });
  });

  it('names the file, the list and the entry of every problem', () => {
    const file = write(
      'site.yaml',
      listFile(list('bad-ranges', 'cidr', ['10.0.0.0/8', '10.0.0.0/33', 'vpn.example.com']), list('twice', 'keyword', ['a', 'b', 'a']), list('odd-kind', 'ip', ['10.0.0.1'])),
    );
    const other = write('other.yaml', listFile(list('twice', 'keyword', ['c'])));
    expect(loadLists(DEFAULT_LISTS_PATH, [file, other]).problems).toStrictEqual([
      { file, listId: 'bad-ranges', path: '[0].values.1', message: 'entry "10.0.0.0/33" is not a CIDR range (expected e.g. 10.0.0.0/8, 2001:db8::/32 or one address)' },
      { file, listId: 'bad-ranges', path: '[0].values.2', message: 'entry "vpn.example.com" is not a CIDR range (expected e.g. 10.0.0.0/8, 2001:db8::/32 or one address)' },
      { file, listId: 'twice', path: '[1].values.2', message: 'entry "a" is listed twice' },
      { file, listId: 'odd-kind', path: '[2].kind', message: 'Invalid option: expected one of "keyword"|"cidr"|"wildcard"' },
      { file: other, listId: 'twice', path: 'id', message: `duplicate list id (also in ${file})` },
    ]);
  });

  it('replaces a shipped list by id, or appends to it, keeping its kind', () => {
    const file = write(
      'site.yaml',
      listFile(
        list('groups-requiring-2fa', 'keyword', ['billing', 'staff-admin']),
        list('sensitive-groups', 'keyword', ['ledger', 'payments'], '    merge: append\n'),
        list('partner-consumers', 'keyword', ['acme-erp']),
      ),
    );
    const { lists, problems } = loadLists(DEFAULT_LISTS_PATH, [folder]);
    expect(problems).toStrictEqual([]);
    expect(lists.get('groups-requiring-2fa')?.values).toStrictEqual(['billing', 'staff-admin']);
    expect(lists.get('sensitive-groups')?.values).toStrictEqual(['payments', 'accounts', 'ledger']);
    expect(lists.get('sensitive-groups')?.files).toStrictEqual([DEFAULT_LISTS_PATH, file]);
    expect(lists.get('partner-consumers')?.has('acme-erp')).toBe(true);
  });

  it('refuses a change of kind, an append to no shipped list, an unparsable file and a missing path', () => {
    const file = write('site.yaml', listFile(list('trusted-egress', 'keyword', ['office']), list('my-own', 'keyword', ['x'], '    merge: append\n')));
    const broken = write('broken.yaml', 'lists: [ {');
    const problems = loadLists(DEFAULT_LISTS_PATH, [file, broken, join(folder, 'missing.yaml')]).problems;
    expect(problems.map(({ file: at, listId, path, message }) => ({ at, listId, path, message: message.slice(0, 17) }))).toStrictEqual([
      { at: join(folder, 'missing.yaml'), listId: undefined, path: '', message: 'no such file or f' },
      { at: file, listId: 'trusted-egress', path: 'kind', message: 'kind keyword diff' },
      { at: file, listId: 'my-own', path: 'merge', message: 'merge: append add' },
      { at: broken, listId: undefined, path: '', message: 'cannot be parsed:' },
    ]);
    expect(problems[1]?.message).toBe("kind keyword differs from the shipped list's kind cidr");
  });
  // JSON.parse keeps the last of two keys without a word; YAML refuses them. A list with two
  // `values` kept the second set of entries.
  it('refuses a key written twice in one JSON list, naming the file, the list and the key; reads a file that starts with a byte-order mark', () => {
    const file = write('site.json', '{"lists":[{"id":"offices","description":"Our offices.","kind":"cidr","values":["203.0.113.0/24"],"values":["0.0.0.0/0"]}]}');
    expect(loadLists(DEFAULT_LISTS_PATH, [file]).problems).toStrictEqual([
      { file, listId: 'offices', path: '[0].values', message: 'the key values is written twice in one object; JSON would keep the last one without a word (YAML refuses it too): keep one' },
    ]);
    writeFileSync(file, `\uFEFF${JSON.stringify([{ id: 'offices', description: 'Our offices.', kind: 'cidr', values: ['203.0.113.0/24'] }])}`);
    const yaml = write('more.yaml', `\uFEFF${listFile(list('partner-consumers', 'keyword', ['acme-erp']))}`);
    const { lists, problems } = loadLists(DEFAULT_LISTS_PATH, [file, yaml]);
    expect(problems).toStrictEqual([]);
    expect(lists.get('offices')?.values).toStrictEqual(['203.0.113.0/24']);
    expect(lists.get('partner-consumers')?.values).toStrictEqual(['acme-erp']);
  });
});

describe('rules that name lists', () => {
  it('refuse to load when a list is unknown, naming the rule, where and the list', () => {
    const file = write('rules.json', matchRule('uses-a-list', { all: [{ field: 'policy.kind', equals: 'authn' }, { field: 'policy.group', inList: 'step-up-groups' }] }));
    expect(problemsOf(() => loadRuleSet([file])).map(({ file: at, ruleId, path, message }) => ({ at, ruleId, path, message }))).toStrictEqual([
      {
        at: file,
        ruleId: 'uses-a-list',
        path: '[0].filter.all.1.inList',
        message: 'names list step-up-groups, which is not defined (lists: groups-requiring-2fa, sensitive-groups, privileged-scopes, trusted-egress, partner-consumers)',
      },
    ]);
  });

  it('report a list refused for its own problems once, at the list', () => {
    const rules = write('rules.json', matchRule('uses-a-list', { field: 'client.ip', inList: 'offices' }));
    const lists = write('offices.yaml', listFile(list('offices', 'cidr', ['not-a-range'])));
    const problems = problemsOf(() => loadRuleSet([rules], { lists: [lists] }));
    expect(problems.map((problem) => problem.listId ?? problem.ruleId)).toStrictEqual(['offices']);
    expect(problems[0]?.message).toBe('entry "not-a-range" is not a CIDR range (expected e.g. 10.0.0.0/8, 2001:db8::/32 or one address)');
  });

  it('report a list refused for its kind or merge once, at the list', () => {
    const rules = write('rules.json', matchRule('uses-lists', { any: [{ field: 'client.ip', inList: 'trusted-egress' }, { field: 'policy.group', inList: 'my-groups' }] }));
    const lists = write('site.yaml', listFile(list('trusted-egress', 'keyword', ['office']), list('my-groups', 'keyword', ['x'], '    merge: append\n')));
    const problems = problemsOf(() => loadRuleSet([rules], { lists: [lists] }));
    expect(problems.map((problem) => [problem.listId ?? problem.ruleId, problem.path])).toStrictEqual([
      ['trusted-egress', 'kind'],
      ['my-groups', 'merge'],
    ]);
  });

  // A wildcard list tests text; a status is a number: `{ field: invocation.status, inList: my-4xx }`
  // over ["4*"] loaded and never matched. A keyword list compares an entry's text, so it holds.
  it('refuse a wildcard list named on a number or true-or-false field, naming the rule, the field and the list; a keyword list holds there', () => {
    const lists = write('site.yaml', listFile(list('my-4xx', 'wildcard', ['4*']), list('my-4xx-codes', 'keyword', [401, 403])));
    const rules = write(
      'rules.json',
      JSON.stringify([
        ...(JSON.parse(matchRule('client-errors', { all: [{ field: 'family', equals: 'invocation' }, { field: 'invocation.status', inList: 'my-4xx' }] })) as object[]),
        ...(JSON.parse(matchRule('session-devices', { field: 'correlated.device.fromSession', inList: 'my-4xx' })) as object[]),
      ]),
    );
    expect(problemsOf(() => loadRuleSet([rules], { lists: [lists] })).map(({ ruleId, path, message }) => ({ ruleId, path, message }))).toStrictEqual([
      {
        ruleId: 'client-errors',
        path: '[0].filter.all.1.inList',
        message: 'my-4xx is a wildcard list and invocation.status holds a number, not text: its patterns test text only, so the condition never holds (name a keyword list of the values, or compare a number with gt, gte, lt or lte)',
      },
      {
        ruleId: 'session-devices',
        path: '[1].filter.inList',
        message: 'my-4xx is a wildcard list and correlated.device.fromSession holds true or false, not text: its patterns test text only, so the condition never holds (name a keyword list of the values, or compare a number with gt, gte, lt or lte)',
      },
    ]);
    writeFileSync(rules, matchRule('client-errors', { field: 'invocation.status', inList: 'my-4xx-codes' }));
    const [compiled] = loadRuleSet([rules], { lists: [lists] }).rules;
    expect(compiled?.matches(invocation({ 'invocation.status': 403 }))).toBe(true);
    expect(compiled?.matches(invocation({ 'invocation.status': 404 }))).toBe(false);
  });

  it('in the default pack follow the operator lists: a platform with other group names fires on them', () => {
    const basicAuth = (group: string): DetectionInput =>
      policy({ 'policy.kind': 'authn', 'policy.outcome': 'pass', 'policy.authContext': 'basic', 'policy.group': group });
    const rule = (ruleSet: RuleSet) => ruleSet.rules.find((compiled) => compiled.rule.id === 'basic-auth-on-2fa-resource');
    const shipped = loadRuleSet([DEFAULT_RULES_PATH]);
    expect(rule(shipped)?.matches(basicAuth('payments'))).toBe(true);
    expect(rule(shipped)?.matches(basicAuth('billing'))).toBe(false);

    write('site.yaml', listFile(list('groups-requiring-2fa', 'keyword', ['billing'])));
    const site = loadRuleSet([DEFAULT_RULES_PATH], { lists: [folder] });
    expect(rule(site)?.matches(basicAuth('billing'))).toBe(true);
    expect(rule(site)?.matches(basicAuth('payments'))).toBe(false);
    // The lists are part of what the set is: another list, another digest.
    expect(site.digest).not.toBe(shipped.digest);
  });
});

describe('list reload with the rules', () => {
  async function until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!condition() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 25));
  }

  it('recompiles the rules when a list file changes, and keeps the running set when the list is bad', async () => {
    const rulesFolder = join(folder, 'rules');
    const listsFolder = join(folder, 'lists');
    for (const path of [rulesFolder, listsFolder]) mkdirSync(path);
    writeFileSync(join(rulesFolder, 'rules.json'), matchRule('office-login', { field: 'client.ip', inList: 'offices' }));
    writeFileSync(join(listsFolder, 'offices.yaml'), listFile(list('offices', 'cidr', ['203.0.113.0/24'])));
    const running = loadRuleSet([rulesFolder], { lists: [listsFolder] });
    const from = (ip: string): DetectionInput => policy({ 'client.ip': ip });
    expect(running.rules[0]?.matches(from('198.51.100.7'))).toBe(false);

    const loads: RuleSet[] = [];
    const stop = watchRules([rulesFolder], (next) => loads.push(next), undefined, 50, { lists: [listsFolder] });
    try {
      writeFileSync(join(listsFolder, 'offices.yaml'), listFile(list('offices', 'cidr', ['203.0.113.0/24', '198.51.100.0/24'])));
      await until(() => loads.length >= 1);
      expect(loads).toHaveLength(1);
      expect(loads[0]?.rules[0]?.matches(from('198.51.100.7'))).toBe(true);
      expect(loads[0]?.lists.get('offices')?.values).toStrictEqual(['203.0.113.0/24', '198.51.100.0/24']);

      writeFileSync(join(listsFolder, 'offices.yaml'), listFile(list('offices', 'cidr', ['198.51.100.0/40'])));
      await new Promise((done) => setTimeout(done, 400));
      expect(loads).toHaveLength(1);
    } finally {
      stop();
    }
  });

  // As a rule file: a list file named on its own from a ConfigMap is a symlink through `..data`,
  // and an update swaps `..data`; no event names the file.
  it('recompiles the rules when a list file named on its own is updated through a ConfigMap', async () => {
    const rulesFolder = join(folder, 'rules');
    const mount = join(folder, 'config');
    for (const path of [rulesFolder, mount]) mkdirSync(path);
    writeFileSync(join(rulesFolder, 'rules.json'), matchRule('office-login', { field: 'client.ip', inList: 'offices' }));
    const publish = (dated: string, ranges: string[]): void => {
      mkdirSync(join(mount, dated));
      writeFileSync(join(mount, dated, 'offices.yaml'), listFile(list('offices', 'cidr', ranges)));
      symlinkSync(dated, join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    };
    publish('..2026_12_06', ['203.0.113.0/24']);
    symlinkSync(join('..data', 'offices.yaml'), join(mount, 'offices.yaml'));
    const listPath = join(mount, 'offices.yaml');
    const loads: RuleSet[] = [];
    const stop = watchRules([rulesFolder], (next) => loads.push(next), undefined, 50, { lists: [listPath] });
    try {
      publish('..2026_12_07', ['198.51.100.0/24']);
      await until(() => loads.length >= 1);
      expect(loads).toHaveLength(1);
      expect(loads[0]?.rules[0]?.matches(policy({ 'client.ip': '198.51.100.7' }))).toBe(true);
    } finally {
      stop();
    }
  });
});

describe('coverage over given events', () => {
  const rules = JSON.stringify([
    { id: 'basic-on-2fa', version: 1, name: 'Basic on 2FA', description: 'Basic auth on a 2FA group.', severity: 'high', type: 'match', filter: { field: 'policy.group', inList: 'step-up' } },
    { id: 'xml-threats', version: 1, name: 'XML threats', description: 'XML threat violations.', severity: 'high', type: 'match', filter: { field: 'policy.kind', equals: 'xml_threat' } },
    { id: 'new-device', version: 1, name: 'New device', description: 'A new device.', severity: 'low', type: 'new_value', groupBy: ['actor.userId'], field: 'device.deviceId' },
    {
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
        { name: 'write', filter: { field: 'invocation.group', inList: 'sensitive' } },
      ],
    },
  ]);

  function ruleSet(): RuleSet {
    const file = write('rules.json', rules);
    const lists = write('lists.yaml', listFile(list('step-up', 'keyword', ['payments', 'admin']), list('sensitive', 'keyword', ['accounts', 'ledger']), list('unused', 'cidr', ['10.0.0.0/8'])));
    return loadRuleSet([file], { lists: [lists] });
  }

  it('counts filter and step matches, flags rules that never matched, and lists unseen entries', () => {
    const set = ruleSet();
    const counter = new CoverageCounter(set);
    const device = { event: event(deviceEvent(), { id: 'evt-device-1', 'actor.userId': 'u-1' }) };
    const detection = { ruleId: 'new-device', eventIds: ['evt-device-1'] } as unknown as Detection;
    counter.add(
      [
        policy({ id: 'evt-policy-1', 'policy.group': 'payments' }),
        policy({ id: 'evt-policy-2', 'policy.group': 'payments' }),
        policy({ id: 'evt-policy-3', 'policy.group': 'public' }),
        device,
        invocation({ id: 'evt-invocation-1', 'invocation.group': 'accounts' }),
      ],
      [detection],
    );
    const report = counter.report();
    expect(report.events).toBe(5);
    expect(report.digest).toBe(set.digest);
    expect(report.rules).toStrictEqual([
      { ruleId: 'basic-on-2fa', type: 'match', matched: 2, detections: 0, neverMatched: false },
      { ruleId: 'xml-threats', type: 'match', matched: 0, detections: 0, neverMatched: true },
      { ruleId: 'new-device', type: 'new_value', matched: 5, detections: 1, neverMatched: false },
      {
        ruleId: 'device-then-write',
        type: 'sequence',
        matched: 2,
        steps: [
          { name: 'new device', matched: 1 },
          { name: 'write', matched: 1 },
        ],
        detections: 0,
        neverMatched: false,
      },
    ]);
    expect(report.lists).toStrictEqual([
      ...report.lists.filter((item) => !['step-up', 'sensitive', 'unused'].includes(item.listId)),
      { listId: 'step-up', kind: 'keyword', referencedBy: [{ ruleId: 'basic-on-2fa', field: 'policy.group' }], seen: { payments: 2, admin: 0 }, unseen: ['admin'] },
      { listId: 'sensitive', kind: 'keyword', referencedBy: [{ ruleId: 'device-then-write', field: 'invocation.group' }], seen: { accounts: 1, ledger: 0 }, unseen: ['ledger'] },
      { listId: 'unused', kind: 'cidr', referencedBy: [], seen: { '10.0.0.0/8': 0 }, unseen: ['10.0.0.0/8'] },
    ]);
  });

  it('flags a sequence whose step never matched, even when another step did', () => {
    const counter = new CoverageCounter(ruleSet());
    counter.add([invocation({ 'invocation.group': 'ledger' })], []);
    const sequence = counter.report().rules.find((rule) => rule.ruleId === 'device-then-write');
    expect(sequence).toMatchObject({ matched: 1, neverMatched: true, steps: [{ name: 'new device', matched: 0 }, { name: 'write', matched: 1 }] });
  });
});

describe('vigil rules validate --lists', () => {
  it('validates rules and lists together, naming the list of each problem', async () => {
    const good = write('good.yaml', listFile(list('groups-requiring-2fa', 'keyword', ['billing'])));
    const bad = write('bad.yaml', listFile(list('trusted-egress', 'cidr', ['10.0.0.0/99'])));
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((text: unknown) => void printed.push(String(text)));
    const error = jest.spyOn(console, 'error').mockImplementation((text: unknown) => void printed.push(String(text)));
    try {
      expect(await main(['rules', 'validate', DEFAULT_RULES_PATH, '--lists', good])).toBe(0);
      expect(printed).toContain('  list groups-requiring-2fa  keyword  1 entries');
      expect(await main(['rules', 'validate', DEFAULT_RULES_PATH, '--lists', bad])).toBe(1);
      expect(printed).toContain(`  ${bad}  list trusted-egress  [0].values.0: entry "10.0.0.0/99" is not a CIDR range (expected e.g. 10.0.0.0/8, 2001:db8::/32 or one address)`);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});
