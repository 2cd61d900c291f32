/**
 * `vigil notifications missed` on the real stack: notification dead letters on Kafka, the alerts'
 * states in Elasticsearch, one report of what on-call never received.
 */
import { toAlertDocument } from '../../detectors';
import { ensureTopics, installTemplates } from '../../platform';
import { alertIndexNames, alertSchema } from '../../schemas';
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
    const deadLetter = (alertId: string, destination: string, kind: string, error: string) => ({
      key: alertId,
      value: JSON.stringify({ destination, kind, alertId, error, attempts: 6, payload: { routing_key: '[redacted]' } }),
    });
    const producer = testProducer(stack.kafka);
    await producer.connect();
    await producer.send({
      topic: stack.config.alerting.notificationDeadLetterTopic,
      acks: -1,
      messages: [
        deadLetter('alert-over', 'pagerduty-sre', 'opened', 'HTTP 503: unavailable'),
        deadLetter('alert-still-open', 'pagerduty-sre', 'opened', 'no answer within 5000 ms'),
        { key: 'x', value: 'not a notification dead letter' },
        deadLetter('alert-still-open', 'security-slack', 'escalated', 'HTTP 500: internal error'),
      ],
    });
    await producer.disconnect();

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
  });
});
