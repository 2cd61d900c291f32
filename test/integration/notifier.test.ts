import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import { createKafka, loadConfig, untilReady } from '../../platform';
import { alertSchema, type Alert, type AlertChange } from '../../schemas';
import { parseDestinations, type Destination } from '../../detectors';
import { createNotifier, formatSlack, type NotificationDeadLetter } from '../../detectors';
import { verifySignature } from '../../detectors';
import { readTopic, testLogger } from '../support/harness';
import { testProducer } from '../support/produce';

const SECRET = 'integration-secret-0123456789abcdef';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as the signature covers it. */
  body: string;
}

/** A receiver on loopback that records every request and answers per path. */
function startReceiver(): Promise<{ server: Server; baseUrl: string; received: Received[] }> {
  const received: Received[] = [];
  const answered = new Map<string, number>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      received.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      const count = (answered.get(path) ?? 0) + 1;
      answered.set(path, count);
      if (path.startsWith('/flaky')) {
        response.writeHead(count <= 3 ? 500 : 200).end(count <= 3 ? 'try later' : 'ok');
      } else if (path.startsWith('/reject')) {
        response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"no such channel"}');
      } else if (path.startsWith('/pagerduty')) {
        response.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success","message":"Event processed"}');
      } else {
        response.writeHead(200).end('ok');
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, baseUrl: `http://127.0.0.1:${port}`, received });
    });
  });
}

function alert(overrides: Partial<Alert> = {}): Alert {
  return alertSchema.parse({
    id: `al-${randomBytes(4).toString('hex')}`,
    status: 'open',
    severity: 'high',
    groupKey: 'invocation.resource.api=accounts-v1',
    key: { 'invocation.resource.api': 'accounts-v1' },
    title: 'Request surge on accounts-v1',
    reason: 'accounts-v1 had 5200 requests in 1m, 10.4x its baseline of 500.',
    rules: ['dos-surge-endpoint'],
    ruleNames: ['Request surge per endpoint'],
    tags: ['dos'],
    count: 3,
    suppressed: 2,
    firstSeen: '2026-03-01T10:00:00.000Z',
    lastSeen: '2026-03-01T10:02:00.000Z',
    detections: ['d-1', 'd-2', 'd-3'],
    revision: 1,
    ...overrides,
  });
}

describe('notifier against a real HTTP receiver and Kafka', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let kafka: Kafka;
  let producer: Producer;
  const deadLetterTopic = `it-${randomBytes(4).toString('hex')}.notifications.deadletter`;

  const fast = { initialDelayMs: 20, maxDelayMs: 100, retries: 5, logger: testLogger };
  const on = (prefix: string): Received[] => receiver.received.filter((request) => request.path.startsWith(prefix));
  const destinations = (entries: object[]): Destination[] => parseDestinations(JSON.stringify(entries));

  beforeAll(async () => {
    receiver = await startReceiver();
    kafka = createKafka(loadConfig(process.env), testLogger, `it-notifier-${randomBytes(3).toString('hex')}`);
    const admin = kafka.admin();
    await admin.connect();
    // As Vigil creates topics: writable, not just led, before the first send (see untilReady).
    await admin.createTopics({ topics: [{ topic: deadLetterTopic, numPartitions: 1 }], waitForLeaders: false });
    await untilReady(admin, [{ topic: deadLetterTopic, numPartitions: 1 }]);
    await admin.disconnect();
    producer = testProducer(kafka);
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [deadLetterTopic], timeout: 10_000 });
    await admin.disconnect();
    receiver.server.closeAllConnections();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  });

  it('retries a webhook through three 500s; every attempt is signed and keeps its delivery id', async () => {
    const notifier = createNotifier({
      ...fast,
      destinations: destinations([{ type: 'webhook', name: 'soar', url: `${receiver.baseUrl}/flaky/webhook`, secret: SECRET, timeoutMs: 2000 }]),
      deadLetterTopic,
      producer,
    });
    const opened: AlertChange = { kind: 'opened', alert: alert() };
    notifier.notify(opened);
    await notifier.drain();

    const requests = on('/flaky/webhook');
    expect(requests).toHaveLength(4);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 1, retried: 3, failed: 0, deadLettered: 0 });
    const deliveryIds = new Set(requests.map((request) => request.headers['x-vigil-delivery']));
    expect(deliveryIds.size).toBe(1);
    for (const request of requests) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['x-vigil-event']).toBe('opened');
      const signature = request.headers['x-vigil-signature'];
      expect(verifySignature(SECRET, typeof signature === 'string' ? signature : undefined, request.body, Date.now() / 1000)).toEqual({ ok: true });
      expect(verifySignature('another-secret-0123456789', typeof signature === 'string' ? signature : undefined, request.body, Date.now() / 1000)).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    }
    const delivered = JSON.parse(requests[3]?.body ?? '{}') as Record<string, unknown>;
    expect(delivered).toEqual({ type: 'vigil.alert.opened', deliveryId: [...deliveryIds][0], sentAt: expect.any(String) as unknown, alert: opened.alert });
  });

  it('sends PagerDuty events as the Events API expects: trigger, trigger, then resolve on one dedup_key', async () => {
    const notifier = createNotifier({
      ...fast,
      destinations: destinations([{ type: 'pagerduty', name: 'pager', url: `${receiver.baseUrl}/pagerduty/v2/enqueue`, routingKey: 'R0UT1NGKEY', minSeverity: 'high' }]),
      deadLetterTopic,
      producer,
    });
    const opened = alert();
    notifier.notify({ kind: 'opened', alert: opened });
    notifier.notify({ kind: 'escalated', alert: { ...opened, severity: 'critical', count: 20, revision: 2 } });
    notifier.notify({ kind: 'resolved', alert: { ...opened, severity: 'critical', status: 'resolved', resolvedAt: '2026-03-01T10:20:00.000Z', revision: 3 } });
    await notifier.drain();

    const events = on('/pagerduty').map((request) => {
      expect(request.headers['content-type']).toBe('application/json');
      return JSON.parse(request.body) as Record<string, unknown>;
    });
    expect(events.map((event) => event.event_action)).toEqual(['trigger', 'trigger', 'resolve']);
    expect(new Set(events.map((event) => event.dedup_key))).toEqual(new Set([opened.id]));
    expect(events[0]).toEqual({
      routing_key: 'R0UT1NGKEY',
      event_action: 'trigger',
      dedup_key: opened.id,
      payload: expect.objectContaining({
        summary: '[HIGH] Request surge on accounts-v1: accounts-v1 had 5200 requests in 1m, 10.4x its baseline of 500.',
        source: 'vigil',
        severity: 'error',
        timestamp: '2026-03-01T10:02:00.000Z',
        component: 'invocation.resource.api=accounts-v1',
        group: 'dos',
        class: 'dos-surge-endpoint',
        custom_details: expect.objectContaining({ alertId: opened.id, count: 3 }) as unknown,
      }) as unknown,
    });
    expect(events[1]).toMatchObject({ payload: { severity: 'critical', custom_details: { count: 20, change: 'escalated' } } });
    expect(events[2]).toEqual({ routing_key: 'R0UT1NGKEY', event_action: 'resolve', dedup_key: opened.id });
    expect(notifier.stats()).toEqual({ queued: 0, sent: 3, retried: 0, failed: 0, deadLettered: 0 });
  });

  it('sends a Slack message as formatted', async () => {
    const notifier = createNotifier({
      ...fast,
      destinations: destinations([{ type: 'slack', name: 'chat', url: `${receiver.baseUrl}/slack/services/T0/B0/x` }]),
      deadLetterTopic,
    });
    const change: AlertChange = { kind: 'opened', alert: alert() };
    notifier.notify(change);
    await notifier.drain();
    const [request] = on('/slack/');
    expect(JSON.parse(request?.body ?? '{}')).toEqual(formatSlack(change));
  });

  it('dead-letters a delivery answered 400 after one attempt, keyed by the alert id', async () => {
    const notifier = createNotifier({
      ...fast,
      destinations: destinations([{ type: 'webhook', name: 'gone', url: `${receiver.baseUrl}/reject/hook`, secret: SECRET }]),
      deadLetterTopic,
      producer,
    });
    const opened = alert();
    notifier.notify({ kind: 'opened', alert: opened });
    await notifier.drain();

    expect(on('/reject/hook')).toHaveLength(1);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 0, retried: 0, failed: 1, deadLettered: 1 });
    const [message] = await readTopic(kafka, deadLetterTopic, 1, 30_000);
    expect(message?.key?.toString()).toBe(opened.id);
    const record = JSON.parse(message?.value?.toString() ?? '{}') as NotificationDeadLetter;
    expect(record).toEqual({
      destination: 'gone',
      kind: 'opened',
      alertId: opened.id,
      error: 'HTTP 400: {"error":"no such channel"}',
      attempts: 1,
      payload: expect.objectContaining({ type: 'vigil.alert.opened', alert: opened }) as unknown,
    });
  });
});
