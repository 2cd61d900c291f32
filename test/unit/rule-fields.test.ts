import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleSetError, fieldInfo, loadRuleSet } from '../../detectors';

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'vigil-rule-fields-'));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** The problems a rule set of these rules has (none: []). */
function problemsOf(rules: readonly object[]): string[] {
  const file = join(folder, 'rules.json');
  writeFileSync(file, JSON.stringify(rules));
  try {
    loadRuleSet([file]);
    return [];
  } catch (error) {
    if (!(error instanceof RuleSetError)) throw error;
    return error.problems.map((problem) => `${problem.path}: ${problem.message}`);
  }
}

const base = { version: 1, name: 'A rule', description: 'For the field checks.', severity: 'medium' } as const;
const match = (id: string, filter: object): object => ({ ...base, id, type: 'match', filter });

describe('the fields a rule names are checked against the events', () => {
  it('knows the fields of the contract, of enrichment and of correlation, and what they hold', () => {
    expect(fieldInfo('policy.outcome')).toMatchObject({ kind: 'string', values: ['pass', 'fail'], families: ['policy'] });
    expect(fieldInfo('invocation.status')).toMatchObject({ kind: 'number', families: ['invocation'] });
    expect(fieldInfo('family')).toMatchObject({ values: ['policy', 'invocation', 'device'] });
    expect(fieldInfo('actor.userId')?.families).toEqual(['policy', 'invocation', 'device']);
    expect(fieldInfo('geo.country')).toMatchObject({ kind: 'string' });
    expect(fieldInfo('identity')).toMatchObject({ values: ['proven', 'claimed', 'anonymous'] });
    expect(fieldInfo('correlated.device.knownDevices')).toMatchObject({ kind: 'number' });
    // Free-form maps: a key they can hold, holding what their values are.
    expect(fieldInfo('labels.team')).toEqual({ kind: 'string' });
    expect(fieldInfo('labels.Team')).toBeUndefined();
    expect(fieldInfo('labels.team.lead')).toBeUndefined();
    expect(fieldInfo('correlated.request.policies.authn')).toEqual({ kind: 'string', values: ['pass', 'fail'] });
    expect(fieldInfo('correlated.request.policies.authentication')).toBeUndefined();
    expect(fieldInfo('invocation.statusCode')).toBeUndefined();
  });

  it('refuses a key a free-form map never holds, and a value its keys never hold: labels are lower-case text, a request\'s policies pass or fail by kind', () => {
    expect(problemsOf([match('upper-label', { field: 'labels.Region', equals: 'eu' })])).toEqual([
      '[0].filter.field: labels holds no key "Region": its keys are a key matching /^[a-z][a-z0-9_]{0,63}$/, so labels.Region is never there and such a condition never matches',
    ]);
    expect(problemsOf([match('number-label', { field: 'labels.tier', equals: 1 })])).toEqual(['[0].filter.field: labels.tier is text: compare it with "1" in quotes']);
    expect(problemsOf([match('compared-label', { field: 'labels.tier', gt: 1 })])).toEqual(['[0].filter.field: labels.tier is text, not a number: gt never holds on it']);
    expect(problemsOf([match('policy-outcome', { field: 'correlated.request.policies.authz', equals: 'failed' })])).toEqual([
      '[0].filter.field: correlated.request.policies.authz is never "failed": it is one of pass, fail',
    ]);
    expect(problemsOf([match('policy-kind', { field: 'correlated.request.policies.authentication', equals: 'fail' })])).toEqual([
      '[0].filter.field: correlated.request.policies holds no key "authentication": its keys are a policy kind (authn, authz, rate_limit, json_threat, xml_threat, custom), so correlated.request.policies.authentication is never there and such a condition never matches',
    ]);
    expect(problemsOf([match('fine-label', { field: 'labels.tier', equals: 'gold' }), match('fine-policy', { field: 'correlated.request.policies.authz', equals: 'fail' }), match('derived', { field: 'labels.derived', exists: false })])).toEqual([]);
  });

  it('refuses a field no event has, suggesting the nearest', () => {
    expect(problemsOf([match('misspelt', { field: 'invocation.statusCode', gte: 500 })])).toEqual([
      '[0].filter.field: no event has the field invocation.statusCode (did you mean invocation.status?); such a condition never matches (docs/events.md lists the fields)',
    ]);
    expect(problemsOf([{ ...base, id: 'grouped', type: 'threshold', window: '5m', threshold: 3, groupBy: ['actor.consumerID'] }])).toEqual([
      '[0].groupBy.0: no event has the field actor.consumerID (did you mean actor.consumerId?); such a condition never matches (docs/events.md lists the fields)',
    ]);
  });

  it('takes one groupBy field written alone as a list of one', () => {
    const set = (() => {
      const file = join(folder, 'alone.json');
      writeFileSync(file, JSON.stringify([{ ...base, id: 'alone', type: 'threshold', window: '5m', threshold: 3, groupBy: 'actor.userId' }]));
      return loadRuleSet([file]);
    })();
    const rule = set.rules[0]?.rule;
    expect(rule !== undefined && 'groupBy' in rule ? rule.groupBy : undefined).toEqual(['actor.userId']);
  });

  it('says which type a misspelt one likely is, and that a window needs a unit', () => {
    const typo = problemsOf([{ ...base, id: 'typo', type: 'treshold', window: '5m', threshold: 3, groupBy: ['actor.userId'] }]);
    expect(typo).toHaveLength(1);
    expect(typo[0]).toMatch(/^\[0\]\.type: .*\(did you mean threshold\?\)$/);
    expect(problemsOf([{ ...base, id: 'unitless', type: 'threshold', window: 300, threshold: 3, groupBy: ['actor.userId'] }])).toEqual([
      '[0].window: expected a duration such as 30s, 5m, 2h or 30d (a number alone has no unit)',
    ]);
  });

  it('refuses a value the field never holds: outside its enum, text for a number, a number for text', () => {
    expect(problemsOf([match('enum', { field: 'policy.outcome', equals: 'failed' })])).toEqual(['[0].filter.field: policy.outcome is never "failed": it is one of pass, fail']);
    expect(problemsOf([match('family', { field: 'family', in: ['invocations'] })])).toEqual(['[0].filter.field: family is never "invocations": it is one of policy, invocation, device']);
    expect(problemsOf([match('quoted', { field: 'invocation.status', equals: '404' })])).toEqual(['[0].filter.field: invocation.status is a number: compare it with 404 written without quotes']);
    expect(problemsOf([match('number', { field: 'actor.userId', equals: 42 })])).toEqual(['[0].filter.field: actor.userId is text: compare it with "42" in quotes']);
  });

  // The engine skips an event whose key or counted value is a list or an object: such a rule loaded
  // and never fired, without a word.
  it('refuses a list or an object as a key or a counted value, and takes a condition on a list', () => {
    const threshold = { ...base, type: 'threshold', window: '1m', threshold: 3 };
    expect(problemsOf([{ ...threshold, id: 'keyed-list', groupBy: ['policy.scopes'] }])).toEqual([
      '[0].groupBy.0: policy.scopes holds a list, not one value: an event is skipped by a rule keyed or counted on it, so the rule never fires (a filter condition on it holds on any element)',
    ]);
    expect(problemsOf([{ ...base, id: 'counted-object', type: 'cardinality', groupBy: ['client.ip'], field: 'geo', window: '1m', threshold: 3 }])).toEqual([
      '[0].field: geo holds an object, not one value: an event is skipped by a rule keyed or counted on it, so the rule never fires (a filter condition on it holds on any element)',
    ]);
    expect(problemsOf([{ ...base, id: 'new-failed', type: 'new_value', groupBy: ['actor.userId'], field: 'correlated.request.failedPolicies' }])).toEqual([
      '[0].field: correlated.request.failedPolicies holds a list, not one value: an event is skipped by a rule keyed or counted on it, so the rule never fires (a filter condition on it holds on any element)',
    ]);
    // A condition on a list holds on any element: taken.
    expect(problemsOf([match('scope-condition', { field: 'policy.scopes', in: ['admin'] }), match('failed-condition', { field: 'correlated.request.failedPolicies', in: ['authz'] })])).toEqual([]);
  });

  it('refuses an operator that never holds on the field\'s kind: a comparison on text, a pattern on a number', () => {
    expect(problemsOf([match('gt-text', { field: 'policy.outcome', gt: 3 })])).toEqual(['[0].filter.field: policy.outcome is text, not a number: gt never holds on it']);
    expect(problemsOf([match('regex-number', { field: 'invocation.status', regex: '^5' })])).toEqual([
      '[0].filter.field: invocation.status is a number, not text: regex never holds on it (compare a number with gt, gte, lt, lte or equals)',
    ]);
    expect(problemsOf([match('fine', { all: [{ field: 'invocation.status', gte: 500 }, { field: 'invocation.route', prefix: '/admin' }] })])).toEqual([]);
  });

  it('refuses a cidr condition on a field that holds no IP address, and takes it on one that does', () => {
    expect(problemsOf([match('cidr-user', { field: 'actor.userId', cidr: ['10.0.0.0/8'] })])).toEqual([
      '[0].filter.field: actor.userId is text, not an IP address: cidr never holds on it (the fields that hold one: client.ip, device.ip)',
    ]);
    expect(problemsOf([match('cidr-status', { not: { field: 'invocation.status', cidr: ['10.0.0.0/8'] } })])).toEqual([
      '[0].filter.not.field: invocation.status is a number, not an IP address: cidr never holds on it (the fields that hold one: client.ip, device.ip)',
    ]);
    expect(problemsOf([match('cidr-network', { field: 'ipNetwork', cidr: ['10.0.0.0/8'] })])).toHaveLength(1);
    expect(problemsOf([match('cidr-ip', { any: [{ field: 'client.ip', cidr: ['10.0.0.0/8'] }, { field: 'device.ip', cidr: ['2001:db8::/32'] }] })])).toEqual([]);
  });

  // An IP field holds the contract's spelling: equals and in are put in it at load (filter.ts), and a
  // value that is no address could never match.
  it('refuses a value that is no IP address compared with equals or in on an IP field, and takes any spelling of one', () => {
    expect(problemsOf([match('ip-text', { field: 'client.ip', equals: 'vpn.example.com' }), match('ip-range', { field: 'device.ip', in: ['203.0.113.9', '10.0.0.0/8', 42] })])).toEqual([
      '[0].filter.field: client.ip holds an IP address, and "vpn.example.com" is not one: the condition never holds (write one address such as 203.0.113.9 or 2001:db8::1; a range takes cidr)',
      '[1].filter.field: device.ip holds an IP address, and "10.0.0.0/8" is not one: the condition never holds (write one address such as 203.0.113.9 or 2001:db8::1; a range takes cidr)',
      '[1].filter.field: device.ip holds an IP address, and 42 is not one: the condition never holds (write one address such as 203.0.113.9 or 2001:db8::1; a range takes cidr)',
    ]);
    expect(problemsOf([match('ip-spellings', { field: 'client.ip', in: ['2001:DB8:0:0::1', '::ffff:203.0.113.9', '198.51.100.7'] })])).toEqual([]);
  });

  // Enrichment and the contract write country codes upper case: `us` never matched.
  it('refuses a country code that is not two upper-case letters on a country field, suggesting the upper-case one', () => {
    expect(
      problemsOf([
        match('geo-lower', { field: 'geo.country', equals: 'us' }),
        match('device-name', { field: 'device.geo.country', in: ['FR', 'France'] }),
        match('seen-lower', { field: 'correlated.device.country', equals: 'gb' }),
      ]),
    ).toEqual([
      '[0].filter.field: geo.country holds an upper-case ISO 3166-1 alpha-2 country code such as "US", never "us" (write "US")',
      '[1].filter.field: device.geo.country holds an upper-case ISO 3166-1 alpha-2 country code such as "US", never "France"',
      '[2].filter.field: correlated.device.country holds an upper-case ISO 3166-1 alpha-2 country code such as "US", never "gb" (write "GB")',
    ]);
    expect(problemsOf([match('geo-upper', { all: [{ field: 'geo.country', in: ['US', 'GB'] }, { not: { field: 'correlated.device.country', equals: 'US' } }] })])).toEqual([]);
  });

  it('refuses a true-or-false field compared with text, and a text field with true or false', () => {
    expect(problemsOf([match('bool-text', { field: 'correlated.device.fromSession', equals: 'false' })])).toEqual([
      '[0].filter.field: correlated.device.fromSession is true or false: compare it with false written without quotes',
    ]);
    expect(problemsOf([match('text-bool', { field: 'actor.userId', in: [true] })])).toEqual(['[0].filter.field: actor.userId is text: compare it with "true" in quotes']);
    expect(problemsOf([match('bool', { field: 'correlated.device.fromSession', equals: false })])).toEqual([]);
  });

  it('refuses a cidr list named on a field that holds no IP address, as it refuses a cidr condition', () => {
    // trusted-egress is a shipped cidr list; partner-consumers a keyword one.
    expect(problemsOf([match('list-user', { all: [{ field: 'family', equals: 'policy' }, { field: 'actor.userId', inList: 'trusted-egress' }] })])).toEqual([
      '[0].filter.all.1.inList: trusted-egress is a cidr list and actor.userId holds no IP address: the condition never holds (the fields that hold one: client.ip, device.ip)',
    ]);
    expect(problemsOf([match('list-ip', { not: { field: 'client.ip', inList: 'trusted-egress' } }), match('list-keyword', { field: 'actor.consumerId', inList: 'partner-consumers' })])).toEqual([]);
  });

  it('refuses an all of conditions no one event meets: fields of two families', () => {
    expect(problemsOf([match('two-families', { all: [{ field: 'family', equals: 'invocation' }, { field: 'device.deviceId', exists: true }] })])).toEqual([
      '[0].filter.all: no one event meets all of these: family invocation, device.deviceId (device); a step or filter sees one event at a time (a sequence takes one step per event)',
    ]);
  });

  // Only an all's own conditions were compared: one whose family narrowed to nothing through an
  // any (or an all) inside it loaded, and never matched.
  it('refuses an all no one event meets through a block inside it: an any none of whose branches has a family the rest allow', () => {
    const policyThenNothing = { any: [{ field: 'invocation.status', gte: 500 }, { field: 'device.deviceId', exists: true }] };
    expect(
      problemsOf([
        match('policy-and-call-or-device', { all: [{ field: 'family', equals: 'policy' }, policyThenNothing] }),
        match('call-and-policy-or-device', { all: [{ field: 'family', equals: 'invocation' }, { all: [{ any: [{ field: 'policy.kind', equals: 'authn' }, { field: 'device.action', equals: 'login' }] }] }] }),
        {
          ...base,
          id: 'step-of-nothing',
          type: 'sequence',
          groupBy: ['actor.userId'],
          window: '10m',
          steps: [
            { name: 'failure', filter: { field: 'policy.outcome', equals: 'fail' } },
            { name: 'then', filter: { all: [{ field: 'policy.kind', equals: 'authz' }, policyThenNothing] } },
          ],
        },
      ]),
    ).toStrictEqual([
      '[0].filter.all: no one event meets all of these: family policy, invocation.status (invocation) or device.deviceId (device); a step or filter sees one event at a time (a sequence takes one step per event)',
      '[1].filter.all: no one event meets all of these: family invocation, policy.kind (policy) or device.action (device); a step or filter sees one event at a time (a sequence takes one step per event)',
      '[2].steps.1.filter.all: no one event meets all of these: policy.kind (policy), invocation.status (invocation) or device.deviceId (device); a step or filter sees one event at a time (a sequence takes one step per event)',
    ]);
    // A block no event meets by itself is refused where it is, not again in the all around it.
    expect(problemsOf([match('inner-only', { all: [{ field: 'family', equals: 'policy' }, { all: [{ field: 'family', equals: 'invocation' }, { field: 'device.deviceId', exists: true }] }] })])).toStrictEqual([
      '[0].filter.all.1.all: no one event meets all of these: family invocation, device.deviceId (device); a step or filter sees one event at a time (a sequence takes one step per event)',
    ]);
    // One branch the rest allow is enough; a not allows any family.
    expect(
      problemsOf([
        match('ok-branch', { all: [{ field: 'family', equals: 'policy' }, { any: [{ field: 'invocation.status', gte: 500 }, { field: 'policy.outcome', equals: 'fail' }] }] }),
        match('ok-not', { all: [{ field: 'family', equals: 'policy' }, { any: [{ field: 'invocation.status', gte: 500 }, { not: { field: 'device.deviceId', exists: true } }] }] }),
      ]),
    ).toStrictEqual([]);
  });

  it('takes what can match: fields every family has, exists: false on another family\'s field, any and not across families, labels, enrichment', () => {
    expect(
      problemsOf([
        match('ok-1', { all: [{ field: 'family', equals: 'policy' }, { field: 'actor.userId', exists: true }, { field: 'invocation.status', exists: false }] }),
        match('ok-2', { any: [{ field: 'policy.kind', equals: 'authn' }, { field: 'device.action', equals: 'login' }] }),
        match('ok-3', { all: [{ field: 'labels.team', equals: 'payments' }, { field: 'geo.country', in: ['KP', 'IR'] }, { field: 'identity', equals: 'proven' }, { field: 'invocation.status', gte: 500 }] }),
        match('ok-4', { all: [{ field: 'family', equals: 'invocation' }, { not: { field: 'policy.kind', equals: 'authn' } }] }),
      ]),
    ).toEqual([]);
    // The default pack, as shipped.
    expect(loadRuleSet([join(__dirname, '..', '..', 'detectors', 'rules', 'default')]).rules.length).toBeGreaterThan(20);
  });
});

// Only the conditions of one `all` were compared: a key, a counted field or a step naming another
// family's field than the rule's filter lets through loaded, and never fired.
describe('settings and steps are checked against the families the rule\'s filter lets through', () => {
  const policyOnly = { field: 'family', equals: 'policy' };
  const invocationOnly = { field: 'family', equals: 'invocation' };

  it('refuses a groupBy entry no event the filter passes has', () => {
    expect(problemsOf([{ ...base, id: 'policy-by-route', type: 'threshold', window: '5m', threshold: 3, filter: policyOnly, groupBy: ['actor.userId', 'invocation.route'] }])).toStrictEqual([
      "[0].groupBy.1: invocation.route is a field of invocation events only, and the rule's filter lets through policy events only (family policy): every event it passes lacks this key and is skipped, so the rule never fires",
    ]);
    // A family no event is: refused as such, once, not again for the key.
    expect(problemsOf([{ ...base, id: 'policies-by-route', type: 'threshold', window: '5m', threshold: 3, filter: { field: 'family', equals: 'policies' }, groupBy: ['invocation.route'] }])).toStrictEqual([
      '[0].filter.field: family is never "policies": it is one of policy, invocation, device',
    ]);
    // A match rule still fires, under the default key: the entry does nothing.
    expect(problemsOf([{ ...match('match-by-device', { field: 'invocation.status', gte: 500 }), groupBy: ['device.deviceId'] }])).toStrictEqual([
      "[0].groupBy.0: device.deviceId is a field of device events only, and the rule's filter lets through invocation events only (invocation.status (invocation)): no event it passes has this key, so every detection gets the default key instead",
    ]);
  });

  it('refuses a counted, remembered or measured field and a distinctField no event the filter passes has', () => {
    expect(problemsOf([{ ...base, id: 'new-device-on-calls', type: 'new_value', filter: invocationOnly, groupBy: ['actor.userId'], field: 'device.deviceId' }])).toStrictEqual([
      "[0].field: device.deviceId is a field of device events only, and the rule's filter lets through invocation events only (family invocation): every event it passes lacks it and is skipped, so the rule never fires",
    ]);
    expect(problemsOf([{ ...base, id: 'routes-per-ip', type: 'cardinality', filter: { field: 'policy.outcome', equals: 'fail' }, groupBy: ['client.ip'], field: 'invocation.route', window: '5m', threshold: 3 }])).toStrictEqual([
      "[0].field: invocation.route is a field of invocation events only, and the rule's filter lets through policy events only (policy.outcome (policy)): every event it passes lacks it and is skipped, so the rule never fires",
    ]);
    expect(problemsOf([{ ...base, id: 'failures-from-devices', type: 'threshold', filter: policyOnly, groupBy: ['actor.userId'], window: '5m', threshold: 3, distinctField: 'device.ip' }])).toStrictEqual([
      "[0].distinctField: device.ip is a field of device events only, and the rule's filter lets through policy events only (family policy): no event it passes has a value of it, so no detection ever lists one",
    ]);
    expect(
      problemsOf([{ ...base, id: 'devices-per-route', type: 'surge', filter: invocationOnly, groupBy: ['invocation.route'], measure: { kind: 'distinct', field: 'device.deviceId' }, concentration: { field: 'device.ip' } }]),
    ).toStrictEqual([
      "[0].measure.field: device.deviceId is a field of device events only, and the rule's filter lets through invocation events only (family invocation): every event it passes lacks it and is skipped, so the rule never fires",
      "[0].concentration.field: device.ip is a field of device events only, and the rule's filter lets through invocation events only (family invocation): no event it passes has a value of it, so the traffic is never found concentrated",
    ]);
  });

  it('refuses a sequence step, or another filter the type runs, that no event the filter passes meets', () => {
    const sequence = (id: string, filter: object, second: object): object => ({
      ...base,
      id,
      type: 'sequence',
      filter,
      groupBy: ['actor.userId'],
      window: '10m',
      steps: [
        { name: 'failure', filter: { field: 'policy.outcome', equals: 'fail' } },
        { name: 'then', filter: second },
      ],
    });
    expect(problemsOf([sequence('policy-then-5xx', policyOnly, { field: 'invocation.status', gte: 500 })])).toStrictEqual([
      "[0].steps.1.filter.field: invocation.status is a field of invocation events only, and the rule's filter lets through policy events only (family policy): this step never matches, so the sequence never completes (it sees only the events the rule's filter passed)",
    ]);
    expect(problemsOf([sequence('policy-then-device', policyOnly, { any: [{ field: 'family', equals: 'device' }, { field: 'device.action', equals: 'login' }] })])).toStrictEqual([
      "[0].steps.1.filter.any.0.field: family is never device here, and the rule's filter lets through policy events only (family policy): this step never matches, so the sequence never completes (it sees only the events the rule's filter passed)",
      "[0].steps.1.filter.any.1.field: device.action is a field of device events only, and the rule's filter lets through policy events only (family policy): this step never matches, so the sequence never completes (it sees only the events the rule's filter passed)",
    ]);
    expect(
      problemsOf([{ ...base, id: 'counted-devices', type: 'cardinality', filter: policyOnly, groupBy: ['client.ip'], field: 'actor.userId', window: '5m', threshold: 3, counted: { filter: { field: 'device.action', equals: 'login' } } }]),
    ).toStrictEqual([
      "[0].counted.filter.field: device.action is a field of device events only, and the rule's filter lets through policy events only (family policy): this filter never passes an event (it sees only the events the rule's filter passed)",
    ]);
  });

  // The key was compared with the rule's filter only: a step matching only events of a family
  // without it loaded, and the engine skipped every event it matched, so it never completed.
  it('refuses a sequence step that matches only events without a groupBy field, naming the step and the field', () => {
    const sequence = (id: string, filter: object | undefined, groupBy: string[], steps: object[]): object => ({ ...base, id, type: 'sequence', ...(filter ? { filter } : {}), groupBy, window: '10m', steps });
    const failure = { name: 'failure', filter: { field: 'policy.outcome', equals: 'fail' } };
    const serverError = { name: '5xx', filter: { field: 'invocation.status', gte: 500 } };
    const login = { name: 'login', filter: { field: 'device.action', equals: 'login' } };
    expect(
      problemsOf([
        sequence('failure-then-5xx-by-route', undefined, ['invocation.route'], [failure, serverError]),
        sequence('failure-then-login-by-device', { field: 'family', in: ['policy', 'device'] }, ['actor.userId', 'device.deviceId'], [failure, login]),
      ]),
    ).toStrictEqual([
      '[0].steps.0.filter: invocation.route (groupBy.0) is a field of invocation events only, and step 0 "failure" matches policy events only (policy.outcome (policy)): every event it matches lacks this key and is skipped, so the sequence never completes',
      '[1].steps.0.filter: device.deviceId (groupBy.1) is a field of device events only, and step 0 "failure" matches policy events only (family policy/device, policy.outcome (policy)): every event it matches lacks this key and is skipped, so the sequence never completes',
    ]);
    // A key the rule's filter already keeps out is refused for the filter, once, not again per step.
    expect(problemsOf([sequence('policy-by-route', { field: 'family', equals: 'policy' }, ['invocation.route'], [failure, { name: 'denied', filter: { field: 'policy.kind', equals: 'authz' } }])])).toStrictEqual([
      "[0].groupBy.0: invocation.route is a field of invocation events only, and the rule's filter lets through policy events only (family policy): every event it passes lacks this key and is skipped, so the rule never fires",
    ]);
    // Steps whose events have the key: a field every family has, a step one branch of which has it, a not.
    expect(
      problemsOf([
        sequence('ok-user', undefined, ['actor.userId'], [failure, serverError]),
        sequence('ok-branch', undefined, ['invocation.route'], [{ name: 'either', filter: { any: [failure.filter, serverError.filter] } }, serverError]),
        sequence('ok-not', undefined, ['device.deviceId'], [{ name: 'not a failure', filter: { not: failure.filter } }, login]),
      ]),
    ).toStrictEqual([]);
  });

  it('takes a field some allowed family has, an any across families, and what holds without the field', () => {
    const either = { any: [policyOnly, { field: 'invocation.status', gte: 400 }] };
    expect(
      problemsOf([
        // Policy events lack the route and are skipped; invocations have it.
        { ...base, id: 'ok-either', type: 'threshold', window: '5m', threshold: 3, filter: either, groupBy: ['invocation.route'], distinctField: 'policy.kind' },
        // Enrichment, labels and the fields every family has.
        { ...base, id: 'ok-enriched', type: 'new_value', filter: policyOnly, groupBy: ['actor.userId', 'labels.team'], field: 'geo.country' },
        {
          ...base,
          id: 'ok-steps',
          type: 'sequence',
          filter: policyOnly,
          groupBy: ['actor.userId'],
          window: '10m',
          steps: [
            { name: 'not a 5xx', filter: { not: { field: 'invocation.status', gte: 500 } } },
            { name: 'no status', filter: { all: [{ field: 'invocation.status', exists: false }, { any: [{ field: 'device.action', equals: 'login' }, { field: 'policy.outcome', equals: 'fail' }] }] } },
          ],
        },
        // No filter, or one that names no family: every family.
        { ...base, id: 'ok-unfiltered', type: 'new_value', groupBy: ['actor.userId'], field: 'device.deviceId' },
        { ...base, id: 'ok-negated', type: 'new_value', filter: { not: policyOnly }, groupBy: ['actor.userId'], field: 'device.deviceId' },
      ]),
    ).toStrictEqual([]);
  });
});

describe('a surge measure that can never fire', () => {
  const surge = (id: string, extra: object): object => ({ ...base, id, type: 'surge', groupBy: ['invocation.route'], filter: { field: 'family', equals: 'invocation' }, ...extra });

  // It counts numbers only: a p95 of a route (text) loaded and stayed silent.
  it('refuses a p95 of a field that is not a number, and takes one of a number', () => {
    expect(problemsOf([surge('p95-route', { measure: { kind: 'p95', field: 'invocation.route' } })])).toStrictEqual([
      '[0].measure.field: invocation.route holds text: a p95 measure counts numbers only (invocation.latencyMs, say), so this one would never fire',
    ]);
    expect(problemsOf([surge('p95-latency', { measure: { kind: 'p95', field: 'invocation.latencyMs' } })])).toStrictEqual([]);
    // A label is text (the contract's labels hold strings), never the number a p95 counts.
    expect(problemsOf([surge('p95-label', { measure: { kind: 'p95', field: 'labels.size' } })])).toStrictEqual([
      '[0].measure.field: labels.size holds text: a p95 measure counts numbers only (invocation.latencyMs, say), so this one would never fire',
    ]);
  });
});
