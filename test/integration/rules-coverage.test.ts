import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enrich, toEventDocument } from '../../ingest';
import { installTemplates, loadConfig } from '../../platform';
import { eventIndexName, eventSchema, type VigilEvent } from '../../schemas';
import { main } from '../../scripts/cli';
import type { CoverageResult } from '../../scripts/coverage';
import { isolatedEnv, openStack, type Stack } from '../support/harness';

/**
 * `vigil rules coverage` against the real Elasticsearch: events indexed as the pipeline indexes
 * them, an operator list file that renames the 2FA groups, and the report's rules that never
 * matched and list entries never seen.
 */
describe('vigil rules coverage', () => {
  const env = isolatedEnv();
  let stack: Stack;
  let folder: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-coverage-'));
    writeFileSync(
      join(folder, 'site.yaml'),
      [
        'lists:',
        '  - id: groups-requiring-2fa',
        '    description: This platform names its step-up groups otherwise.',
        '    kind: keyword',
        '    values: [billing, sso-admin]',
        '',
      ].join('\n'),
    );
    // The CLI reads its configuration from the environment, as `vigil` does.
    for (const [name, value] of Object.entries({ ...env, VIGIL_LISTS_PATH: folder })) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    stack = openStack(loadConfig({ ...process.env }));
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await stack.cleanup();
    rmSync(folder, { recursive: true, force: true });
  });

  it('reports the rules that never matched and the list entries never seen in stored events', async () => {
    const start = Date.now() - 10 * 60_000;
    let n = 0;
    const base = (family: string): Record<string, unknown> => ({
      id: `evt-coverage-${String(n).padStart(4, '0')}`,
      schemaVersion: 1,
      family,
      time: new Date(start + n++ * 1000).toISOString(),
      source: { service: 'coverage-gateway', kind: 'gateway' },
      client: { ip: '81.2.69.142' },
    });
    const events: VigilEvent[] = [
      // Basic auth passing on a group the operator's list requires 2FA for: the rule fires.
      { ...base('policy'), actor: { userId: 'u-1' }, policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', authContext: 'basic', group: 'billing', resource: { api: 'billing-v1', method: 'POST', path: '/v1/invoices' } } },
      // On the shipped name, which this platform doesn't have: no longer a 2FA group.
      { ...base('policy'), actor: { userId: 'u-2' }, policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', authContext: 'basic', group: 'payments', resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' } } },
      { ...base('policy'), actor: { userId: 'u-3' }, policy: { kind: 'authz', name: 'require-scope', outcome: 'fail', scopes: ['admin:write'], group: 'billing', resource: { api: 'billing-v1', method: 'DELETE', path: '/v1/users/3' } } },
      { ...base('invocation'), actor: { userId: 'u-1' }, invocation: { resource: { api: 'accounts-v1', method: 'PUT', path: '/v1/accounts/1' }, route: '/v1/accounts/:id', status: 200, latencyMs: 20, group: 'accounts' } },
    ].map((raw) => eventSchema.parse(raw));
    const operations = events.flatMap((event, offset) => [
      { create: { _index: eventIndexName(stack.config.indices.prefix, event.family, event.time), _id: event.id } },
      toEventDocument(event, enrich(event, () => undefined), { topic: 'coverage', partition: 0, offset: String(offset) }, new Date()),
    ]);
    const bulk = await stack.elasticsearch.bulk({ operations, refresh: true });
    expect(bulk.errors).toBe(false);

    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((text: unknown) => void printed.push(String(text)));
    let code: number;
    try {
      code = await main(['rules', 'coverage', '--from', 'now-1h', '--to', 'now', '--json']);
    } finally {
      log.mockRestore();
    }
    expect(code).toBe(0);
    const report = JSON.parse(printed.join('\n')) as CoverageResult;
    expect(report.events).toBe(4);
    const rule = (id: string) => report.rules.find((item) => item.ruleId === id);
    expect(rule('basic-auth-on-2fa-resource')).toMatchObject({ matched: 1, detections: 1, neverMatched: false });
    expect(rule('authz-failure-privileged-scope')).toMatchObject({ matched: 1, detections: 1, neverMatched: false });
    // The write to accounts matches the second step; no new device, so the sequence can't complete.
    expect(rule('new-device-then-sensitive-write')).toMatchObject({
      neverMatched: true,
      steps: [
        { name: 'new device', matched: 0 },
        { name: 'sensitive write', matched: 1 },
      ],
    });
    const never = report.rules.filter((item) => item.neverMatched).map((item) => item.ruleId);
    expect(never).toEqual(expect.arrayContaining(['xml-threat-violation', 'json-threat-violation', 'rate-limit-storm-per-ip', 'new-device-for-user']));
    expect(never).not.toContain('basic-auth-on-2fa-resource');
    const list = (id: string) => report.lists.find((item) => item.listId === id);
    // Seen in the field the list is used on (policy.group), whatever the rest of the filter: the
    // basic auth and the authz denial are both on billing.
    expect(list('groups-requiring-2fa')).toMatchObject({ seen: { billing: 2, 'sso-admin': 0 }, unseen: ['sso-admin'] });
    expect(list('sensitive-groups')).toMatchObject({ seen: { payments: 0, accounts: 1 }, unseen: ['payments'] });
    expect(list('privileged-scopes')).toMatchObject({ seen: { 'admin:*': 1, '*:admin': 0 }, unseen: ['*:admin'] });
  }, 60_000);

  it('prints the table by default, and refuses a time it cannot read with exit code 2', async () => {
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((text: unknown) => void printed.push(String(text)));
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await main(['rules', 'coverage', '--from', 'now-1h', '--to', 'now'])).toBe(0);
      expect(await main(['rules', 'coverage', '--from', 'yesterday', '--to', 'now'])).toBe(2);
      expect(error).toHaveBeenCalledWith(expect.stringContaining('"yesterday" is not a time'));
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
    const table = printed.join('\n');
    expect(table).toMatch(/^coverage: 4 events from /);
    expect(table).toMatch(/^xml-threat-violation +0 +0 +NEVER MATCHED$/m);
    expect(table).toMatch(/^groups-requiring-2fa +keyword +2 +sso-admin$/m);
    expect(table).toContain('list entries never seen: groups-requiring-2fa: sso-admin, sensitive-groups: payments, privileged-scopes: *:admin');
  }, 60_000);
});
