import { parseDestinations } from '../../detectors';
import { alertSchema, type Alert } from '../../schemas';
import { formatMissed, parseNotificationsArgs, planResend, summariseMissed, type AlertState, type Missed } from '../../scripts/notifications';

const now = new Date('2026-12-05T12:00:00Z');
const at = (iso: string): number => Date.parse(iso);

describe('parseNotificationsArgs', () => {
  it('reads missed with a time range and destinations', () => {
    expect(parseNotificationsArgs(['missed', '--from', 'now-2h', '--to', 'now', '--destination', 'pagerduty-sre', '--destination', 'slack'], now)).toStrictEqual({
      command: 'missed',
      from: now.getTime() - 2 * 3_600_000,
      to: now.getTime(),
      destinations: ['pagerduty-sre', 'slack'],
      dryRun: false,
    });
    expect(parseNotificationsArgs(['missed'], now)).toStrictEqual({ command: 'missed', destinations: [], dryRun: false });
  });

  it('reads resend with its options, --dry-run among them', () => {
    expect(parseNotificationsArgs(['resend', '--dry-run', '--from', 'now-1h', '--destination', 'slack'], now)).toStrictEqual({
      command: 'resend',
      from: now.getTime() - 3_600_000,
      destinations: ['slack'],
      dryRun: true,
    });
    expect(parseNotificationsArgs(['resend'], now)).toStrictEqual({ command: 'resend', destinations: [], dryRun: false });
  });

  it.each([
    [[], 'a subcommand is needed: missed or resend'],
    [['redrive'], 'unknown subcommand "redrive"; use missed or resend'],
    [['missed', '--limit', '3'], 'unknown option --limit for notifications missed'],
    [['missed', '--dry-run'], 'unknown option --dry-run for notifications missed'],
    [['resend', '--force'], 'unknown option --force for notifications resend'],
    [['resend', 'everything'], 'unexpected argument "everything" for notifications resend'],
    [['missed', '--destination'], '--destination needs a value'],
    [['missed', '--from', 'yesterday'], '--from: "yesterday" is not a time'],
    [['missed', '--from', 'now', '--to', 'now-1h'], '--from is after --to'],
    // Only the last was read: the first range was dropped without a word.
    [['missed', '--from', 'now-1h', '--from', 'now-30d'], '--from is given twice'],
    [['resend', '--to', 'now', '--dry-run', '--to', 'now-1h'], '--to is given twice'],
  ])('refuses %j: %s', (args, message) => {
    expect(() => parseNotificationsArgs(args, now)).toThrow(message);
  });
});

describe('summariseMissed and formatMissed', () => {
  const miss = (alertId: string, destination: string, kind: Missed['kind'], time: string, error = 'HTTP 503: unavailable'): { alertId: string } & Missed => ({ alertId, destination, kind, error, attempts: 6, time: at(time) });

  it('lists per alert what each destination missed, still-open alerts first, then the most recent', () => {
    const states = new Map<string, AlertState>([
      ['alert-open', { status: 'active', severity: 'critical', title: 'Credential stuffing then a success: client.ip 203.0.113.7' }],
      ['alert-over', { status: 'recovered', severity: 'high', title: 'Request flood on an endpoint' }],
    ]);
    const report = summariseMissed(
      'vigil.notifications.deadletter',
      [
        miss('alert-over', 'pagerduty-sre', 'opened', '2026-12-05T10:05:00Z'),
        miss('alert-open', 'slack', 'escalated', '2026-12-05T10:20:00Z'),
        miss('alert-open', 'pagerduty-sre', 'opened', '2026-12-05T10:10:00Z', 'HTTP 400: Event object is invalid'),
        miss('alert-gone', 'slack', 'opened', '2026-12-05T11:00:00Z'),
      ],
      states,
      1,
    );
    expect(report.alerts.map((alert) => alert.alertId)).toStrictEqual(['alert-open', 'alert-gone', 'alert-over']);
    expect(formatMissed(report)).toStrictEqual([
      'vigil.notifications.deadletter: 4 notifications failed for good, for 3 alerts (1 messages not notification dead letters, left out)',
      '  alert-open  STILL OPEN  critical  Credential stuffing then a success: client.ip 203.0.113.7',
      '    pagerduty-sre: opened at 2026-12-05T10:10:00.000Z, 6 attempts: HTTP 400: Event object is invalid',
      '    slack: escalated at 2026-12-05T10:20:00.000Z, 6 attempts: HTTP 503: unavailable',
      '  alert-gone  unknown (not in the alerts index)',
      '    slack: opened at 2026-12-05T11:00:00.000Z, 6 attempts: HTTP 503: unavailable',
      '  alert-over  recovered  high  Request flood on an endpoint',
      '    pagerduty-sre: opened at 2026-12-05T10:05:00.000Z, 6 attempts: HTTP 503: unavailable',
    ]);
  });

  // A receiver's answer is the receiver's text, and an alert's title comes from events: either
  // could clear or retitle the terminal, or print a line of its own.
  it('escapes control characters in what it prints: the error snippet, destination, title and alert id', () => {
    const report = summariseMissed(
      'vigil.notifications.deadletter',
      [{ alertId: 'alert\u001b[2J', destination: 'slack\r', kind: 'opened', error: 'HTTP 500: \u001b]0;pwned\u0007oops\nfake line \u009b31m', attempts: 6, time: at('2026-12-05T10:00:00Z') }],
      new Map([['alert\u001b[2J', { status: 'active', severity: 'high', title: 'Flood on /x\u001b[31m' }]]),
    );
    const lines = formatMissed(report);
    expect(lines.slice(1)).toStrictEqual([
      '  alert\\u001b[2J  STILL OPEN  high  Flood on /x\\u001b[31m',
      '    slack\\r: opened at 2026-12-05T10:00:00.000Z, 6 attempts: HTTP 500: \\u001b]0;pwned\\u0007oops\\nfake line \\u009b31m',
    ]);
    const controls = [...lines.join('')].filter((character) => {
      const code = character.codePointAt(0) ?? 0;
      return code < 0x20 || (code >= 0x7f && code <= 0x9f);
    });
    expect(controls).toEqual([]);
  });

  it('says so when nothing failed', () => {
    expect(formatMissed(summariseMissed('vigil.notifications.deadletter', [], new Map()))).toStrictEqual(['vigil.notifications.deadletter: 0 notifications failed for good, for 0 alerts']);
  });
});

describe('planResend', () => {
  const destinations = parseDestinations(
    JSON.stringify([
      { name: 'pagerduty-sre', type: 'webhook', url: 'http://127.0.0.1:1/pd', secret: 'a-secret-of-16-chars', minSeverity: 'high' },
      { name: 'security-slack', type: 'webhook', url: 'http://127.0.0.1:1/slack', secret: 'a-secret-of-16-chars', events: ['opened', 'escalated'] },
    ]),
  );
  const alert = (id: string, status: Alert['status'], severity: Alert['severity'] = 'critical'): Alert =>
    alertSchema.parse({
      id,
      status,
      severity,
      groupKey: 'client.ip=203.0.113.7',
      key: { 'client.ip': '203.0.113.7' },
      title: `Credential stuffing: client.ip 203.0.113.7 (${id})`,
      reason: 'IP 203.0.113.7 tried 40 users.',
      rules: ['credential-stuffing'],
      ruleNames: ['Credential stuffing from one IP'],
      tags: ['T1110.004'],
      count: 3,
      suppressed: 1,
      firstSeen: '2026-12-05T10:00:00.000Z',
      lastSeen: '2026-12-05T10:05:00.000Z',
      ...(status === 'resolved' ? { resolvedAt: '2026-12-05T10:20:00.000Z' } : {}),
      detections: ['det-1', 'det-2', 'det-3'],
      revision: 4,
    });
  const alerts = new Map([
    ['open', alert('open', 'open')],
    ['open-medium', alert('open-medium', 'open', 'medium')],
    ['over', alert('over', 'resolved')],
    ['over-never-heard', alert('over-never-heard', 'resolved')],
    ['over-escalation', alert('over-escalation', 'resolved')],
  ]);
  const miss = (alertId: string, destination: string, kind: Missed['kind']) => ({ alertId, destination, kind });

  it('sends an open alert as opened where its opening was missed, else as escalated, and a resolved alert its resolve wherever that was missed', () => {
    const plan = planResend(
      [
        miss('open', 'pagerduty-sre', 'opened'),
        miss('open', 'pagerduty-sre', 'escalated'),
        miss('open', 'security-slack', 'escalated'),
        miss('over', 'pagerduty-sre', 'escalated'),
        miss('over', 'pagerduty-sre', 'resolved'),
        // Its opening failed too, but a change between the two failures may have got through: a
        // resolve of an incident the destination never heard of closes nothing.
        miss('over-never-heard', 'pagerduty-sre', 'opened'),
        miss('over-never-heard', 'pagerduty-sre', 'resolved'),
      ],
      alerts,
      destinations,
    );
    expect(plan.send.map(({ alertId, destination, change, missed }) => [alertId, destination.name, change.kind, change.alert.revision, missed.length])).toStrictEqual([
      ['open', 'pagerduty-sre', 'opened', 4, 2],
      ['open', 'security-slack', 'escalated', 4, 1],
      ['over', 'pagerduty-sre', 'resolved', 4, 2],
      ['over-never-heard', 'pagerduty-sre', 'resolved', 4, 2],
    ]);
    // The alert as it is now, not as it was when the notification failed.
    expect(plan.send[0]?.change.alert).toBe(alerts.get('open'));
    expect(plan.skipped).toStrictEqual([]);
  });

  it('sends a missed resolve as resolved even when the document still says open (its write failed): a trigger would open a page nothing closes', () => {
    const plan = planResend([miss('open', 'pagerduty-sre', 'opened'), miss('open', 'pagerduty-sre', 'resolved')], alerts, destinations);
    expect(plan.send.map(({ alertId, destination, change }) => [alertId, destination.name, change.kind, change.alert.status])).toStrictEqual([['open', 'pagerduty-sre', 'resolved', 'resolved']]);
    expect(plan.skipped).toStrictEqual([]);
  });

  it('leaves out, with why: the opening or an escalation of an incident over since, a lost alert, a removed destination, a routing that no longer takes it', () => {
    const plan = planResend(
      [
        miss('over-never-heard', 'pagerduty-sre', 'opened'),
        miss('over-escalation', 'pagerduty-sre', 'escalated'),
        miss('gone', 'pagerduty-sre', 'opened'),
        miss('open', 'old-webhook', 'opened'),
        miss('open-medium', 'pagerduty-sre', 'opened'),
        miss('over', 'security-slack', 'resolved'),
      ],
      alerts,
      destinations,
    );
    expect(plan.send).toStrictEqual([]);
    expect(plan.skipped).toStrictEqual([
      { alertId: 'gone', destination: 'pagerduty-sre', why: 'the alert is not in the alerts index' },
      { alertId: 'open', destination: 'old-webhook', why: 'the destination is no longer configured (VIGIL_ALERT_DESTINATIONS)' },
      { alertId: 'open-medium', destination: 'pagerduty-sre', why: "its routing does not take a medium alert's opened (minSeverity, tags or events)" },
      { alertId: 'over', destination: 'security-slack', why: "its routing does not take a critical alert's resolved (minSeverity, tags or events)" },
      { alertId: 'over-escalation', destination: 'pagerduty-sre', why: 'resolved since, and its resolve is not among the missed' },
      { alertId: 'over-never-heard', destination: 'pagerduty-sre', why: 'resolved since, and its resolve is not among the missed' },
    ]);
  });
});
