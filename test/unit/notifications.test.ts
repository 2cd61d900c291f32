import { formatMissed, parseNotificationsArgs, summariseMissed, type AlertState, type Missed } from '../../scripts/notifications';

const now = new Date('2026-12-05T12:00:00Z');
const at = (iso: string): number => Date.parse(iso);

describe('parseNotificationsArgs', () => {
  it('reads missed with a time range and destinations', () => {
    expect(parseNotificationsArgs(['missed', '--from', 'now-2h', '--to', 'now', '--destination', 'pagerduty-sre', '--destination', 'slack'], now)).toStrictEqual({
      command: 'missed',
      from: now.getTime() - 2 * 3_600_000,
      to: now.getTime(),
      destinations: ['pagerduty-sre', 'slack'],
    });
    expect(parseNotificationsArgs(['missed'], now)).toStrictEqual({ command: 'missed', destinations: [] });
  });

  it.each([
    [[], 'a subcommand is needed: missed'],
    [['resend'], 'unknown subcommand "resend"; use missed'],
    [['missed', '--limit', '3'], 'unknown option --limit for notifications missed'],
    [['missed', '--destination'], '--destination needs a value'],
    [['missed', '--from', 'yesterday'], '--from: "yesterday" is not a time'],
    [['missed', '--from', 'now', '--to', 'now-1h'], '--from is after --to'],
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

  it('says so when nothing failed', () => {
    expect(formatMissed(summariseMissed('vigil.notifications.deadletter', [], new Map()))).toStrictEqual(['vigil.notifications.deadletter: 0 notifications failed for good, for 0 alerts']);
  });
});
