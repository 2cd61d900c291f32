/**
 * `vigil notifications missed` and `resend` on the real stack: notification dead letters on Kafka,
 * the alerts in Elasticsearch, one report of what on-call never received, and what it missed sent
 * again to a loopback receiver, once.
 */
import { toAlertDocument } from '../../detectors';
import { createRedis, ensureTopics, installTemplates } from '../../platform';
import { alertIndexNames, alertSchema } from '../../schemas';
import { startAlertReceiver } from '../../scripts/alert-receiver';
import { runNotifications } from '../../scripts/notifications';
import { isolatedConfig, openStack, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

const alert = (id: string, status: 'open' | 'resolved') =>
  alertSchema.parse({
    id,
    status,
    severity: 'critical',
    groupKey: 'client.ip=203.0.113.7',
    key: { 'client.ip': '203.0.113.7' },
    title: `Credential stuffing then a success: client.ip 203.0.113.7 (${id})`,
    reason: 'IP 203.0.113.7 signed in after a stuffing run.',
    rules: ['credential-stuffing-then-success'],
    ruleNames: ['Credential stuffing then a success'],
    tags: ['T1110.004'],
    count: 1,
    suppressed: 0,
    firstSeen: '2026-12-05T10:00:00.000Z',
    lastSeen: '2026-12-05T10:00:00.000Z',
    ...(status === 'resolved' ? { resolvedAt: '2026-12-05T10:15:00.000Z' } : {}),
    detections: ['det-1'],
    revision: status === 'open' ? 1 : 2,
  });

/** A notification dead letter as the notifier writes it (the PagerDuty routing key blanked). */
const deadLetter = (alertId: string, destination: string, kind: string, error = 'HTTP 503: unavailable') => ({
  key: alertId,
  value: JSON.stringify({ destination, kind, alertId, error, attempts: 6, payload: { routing_key: '[redacted]' } }),
});

/** Writes messages to the notification dead-letter topic. */
async function writeDeadLetters(stack: Stack, messages: { key: string; value: string }[]): Promise<void> {
  const producer = testProducer(stack.kafka);
  await producer.connect();
  await producer.send({ topic: stack.config.alerting.notificationDeadLetterTopic, acks: -1, messages });
  await producer.disconnect();
}

describe('vigil notifications missed', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('lists the alerts whose notifications failed for good, the still-open one first, with the destinations, changes and errors', async () => {
    const index = alertIndexNames(stack.config.indices.prefix).index;
    for (const [id, status] of [['alert-still-open', 'open'], ['alert-over', 'resolved']] as const) {
      await stack.elasticsearch.index({ index, id, document: toAlertDocument(alert(id, status)) });
    }
    await stack.elasticsearch.indices.refresh({ index });
    await writeDeadLetters(stack, [
      deadLetter('alert-over', 'pagerduty-sre', 'opened'),
      deadLetter('alert-still-open', 'pagerduty-sre', 'opened', 'no answer within 5000 ms'),
      { key: 'x', value: 'not a notification dead letter' },
      deadLetter('alert-still-open', 'security-slack', 'escalated', 'HTTP 500: internal error'),
    ]);

    const lines: string[] = [];
    const code = await runNotifications(['missed'], { config: stack.config, kafka: stack.kafka, elasticsearch: stack.elasticsearch, out: (line) => lines.push(line) });
    expect(code).toBe(0);
    expect(lines[0]).toBe(`${stack.config.alerting.notificationDeadLetterTopic}: 3 notifications failed for good, for 2 alerts (1 messages not notification dead letters, left out)`);
    expect(lines[1]).toBe('  alert-still-open  STILL OPEN  critical  Credential stuffing then a success: client.ip 203.0.113.7 (alert-still-open)');
    expect(lines.slice(2, 4).map((line) => line.replace(/ at \S+,/, ' at T,'))).toStrictEqual([
      '    pagerduty-sre: opened at T, 6 attempts: no answer within 5000 ms',
      '    security-slack: escalated at T, 6 attempts: HTTP 500: internal error',
    ]);
    expect(lines[4]).toBe('  alert-over  recovered  critical  Credential stuffing then a success: client.ip 203.0.113.7 (alert-over)');

    const slackOnly: string[] = [];
    await runNotifications(['missed', '--destination', 'security-slack'], { config: stack.config, kafka: stack.kafka, elasticsearch: stack.elasticsearch, out: (line) => slackOnly.push(line) });
    expect(slackOnly).toHaveLength(3);
    expect(slackOnly[2]).toMatch(/^ {4}security-slack: escalated at /);
    // A resend to a destination none is configured as can only fail: refused, naming the ones there are.
    const typo: string[] = [];
    expect(await runNotifications(['resend', '--destination', 'security-slak'], { config: stack.config, kafka: stack.kafka, elasticsearch: stack.elasticsearch, out: (line) => typo.push(line) })).toBe(2);
    expect(typo).toStrictEqual([]);
  });
});

describe('vigil notifications resend', () => {
  const secret = 'resend-test-secret-0123';
  let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
  let stack: Stack;

  beforeAll(async () => {
    receiver = await startAlertReceiver(secret);
    const destinations = [
      { name: 'pagerduty-sre', type: 'webhook', url: `${receiver.url}/webhook`, secret, minSeverity: 'high' },
      { name: 'security-slack', type: 'webhook', url: `${receiver.url}/webhook`, secret },
      // Nothing listens there: a send fails at once (no retries in the test) and is dead-lettered again.
      { name: 'down-webhook', type: 'webhook', url: 'http://127.0.0.1:1/webhook', secret },
    ];
    stack = openStack(isolatedConfig({ VIGIL_ALERT_DESTINATIONS: JSON.stringify(destinations) }));
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    await receiver.close();
    await stack.cleanup();
  });

  it('sends each destination what it missed, from the alert as it is now, once, and says what it left out and what failed', async () => {
    const index = alertIndexNames(stack.config.indices.prefix).index;
    // The open alert escalated since its notifications failed: revision 3 now, with evidence.
    const open = { ...alert('alert-open', 'open'), revision: 3, count: 5, evidence: { total: 2, entities: 1, rules: [{ rule: 'credential-stuffing', count: 2 }], top: [{ entity: 'client.ip=203.0.113.7', count: 2 }], summary: 'Absorbed 2 detections (credential-stuffing 2) from 1 IP.' } };
    for (const item of [open, alert('alert-over', 'resolved'), alert('alert-never-heard', 'resolved')]) {
      await stack.elasticsearch.index({ index, id: item.id, document: toAlertDocument(item) });
    }
    await stack.elasticsearch.indices.refresh({ index });
    await writeDeadLetters(stack, [
      deadLetter('alert-open', 'pagerduty-sre', 'opened'),
      deadLetter('alert-open', 'security-slack', 'escalated'),
      deadLetter('alert-over', 'pagerduty-sre', 'resolved'),
      deadLetter('alert-never-heard', 'pagerduty-sre', 'opened'),
      deadLetter('alert-gone', 'security-slack', 'opened'),
    ]);
    const redis = createRedis(stack.config);
    const context = (out: string[]) => ({ config: stack.config, kafka: stack.kafka, elasticsearch: stack.elasticsearch, redis, out: (line: string) => out.push(line), retry: { retries: 0 } });
    try {
      const dry: string[] = [];
      expect(await runNotifications(['resend', '--dry-run'], context(dry))).toBe(0);
      expect(dry).toStrictEqual([
        `${stack.config.alerting.notificationDeadLetterTopic}: 5 notifications failed for good; 3 to resend, 2 left out`,
        '  alert-open  pagerduty-sre: opened (critical, revision 3): would send',
        '  alert-open  security-slack: escalated (critical, revision 3): would send',
        '  alert-over  pagerduty-sre: resolved (critical, revision 2): would send',
        '  alert-gone  security-slack: left out: the alert is not in the alerts index',
        '  alert-never-heard  pagerduty-sre: left out: resolved since, and its resolve is not among the missed',
      ]);
      expect(receiver.received).toHaveLength(0);

      const lines: string[] = [];
      expect(await runNotifications(['resend'], context(lines))).toBe(0);
      expect(lines.slice(1, 4)).toStrictEqual([
        '  alert-open  pagerduty-sre: opened (critical, revision 3): sent',
        '  alert-open  security-slack: escalated (critical, revision 3): sent',
        '  alert-over  pagerduty-sre: resolved (critical, revision 2): sent',
      ]);
      const got = receiver.received.map((item) => item.json as { type: string; alert: { id: string; revision: number; count: number; evidence?: { total: number } } });
      expect(receiver.received.every((item) => item.signature === 'valid')).toBe(true);
      expect(got.map((body) => [body.type, body.alert.id, body.alert.revision])).toStrictEqual([
        ['vigil.alert.opened', 'alert-open', 3],
        ['vigil.alert.escalated', 'alert-open', 3],
        ['vigil.alert.resolved', 'alert-over', 2],
      ]);
      // What the alert is now: its count and what it absorbed, not the failed attempt's body.
      expect(got[0]?.alert.count).toBe(5);
      expect(got[0]?.alert.evidence?.total).toBe(2);

      // Run again, the open alert having changed since (a detection folded in: revision 4): nothing
      // twice, the dead letters were answered.
      await stack.elasticsearch.index({ index, id: open.id, document: toAlertDocument({ ...open, revision: 4, count: 6 }), refresh: true });
      const again: string[] = [];
      expect(await runNotifications(['resend'], context(again))).toBe(0);
      expect(again.slice(1, 4)).toStrictEqual([
        '  alert-open  pagerduty-sre: opened (critical, revision 4): sent before',
        '  alert-open  security-slack: escalated (critical, revision 4): sent before',
        '  alert-over  pagerduty-sre: resolved (critical, revision 2): sent before',
      ]);
      expect(receiver.received).toHaveLength(3);

      // A destination still down: the send fails, is dead-lettered again, and the exit code says so.
      await writeDeadLetters(stack, [deadLetter('alert-open', 'down-webhook', 'opened')]);
      const failed: string[] = [];
      expect(await runNotifications(['resend', '--destination', 'down-webhook'], context(failed))).toBe(1);
      expect(failed.slice(1)).toStrictEqual(['  alert-open  down-webhook: opened (critical, revision 4): failed (dead-lettered again)']);
      const missed: string[] = [];
      await runNotifications(['missed', '--destination', 'down-webhook'], context(missed));
      expect(missed[0]).toBe(`${stack.config.alerting.notificationDeadLetterTopic}: 2 notifications failed for good, for 1 alerts`);
    } finally {
      redis.disconnect();
    }
  });
});
