import { Redis } from 'ioredis';
import { ensureTopics, installTemplates } from '../../platform';
import type { Notifier } from '../../detectors';
import type { Vigil } from '../../app';
import type { Detection } from '../../schemas';
import { startAlertReceiver } from '../../scripts/alert-receiver';
import { sampleDetection } from '../support/detections';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

const SECRET = 'e2e-webhook-secret-0123456789';

const detection = (n: number): Detection => sampleDetection(n, 'e2e');

describe('alerts reach on-call: alerter → notifier → a loopback receiver', () => {
  let stack: Stack;
  let redis: Redis;
  let vigil: Vigil;
  let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;

  beforeAll(async () => {
    receiver = await startAlertReceiver(SECRET);
    stack = openStack(
      isolatedConfig({
        VIGIL_ALERT_RESOLVE_AFTER_MS: '2000',
        VIGIL_ALERT_DESTINATIONS: JSON.stringify([
          { name: 'webhook', type: 'webhook', url: `${receiver.url}/webhook`, secret: SECRET },
          { name: 'pagerduty', type: 'pagerduty', url: `${receiver.url}/pagerduty`, routingKey: 'routing-key-e2e-000000000000' },
        ]),
      }),
    );
    redis = new Redis(stack.config.redis.url);
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
    vigil = vigilOn(stack, { roles: ['alerting'], redis, sweepEveryMs: 250 });
    await vigil.start();
  });

  afterAll(async () => {
    await vigil.stop();
    const keys = await redis.keys(`${stack.config.redis.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await receiver.close();
    await stack.cleanup();
  });

  it('sends one signed notification for many detections, then the resolution, with one PagerDuty dedup key', async () => {
    const producer = testProducer(stack.kafka);
    await producer.connect();
    const detections = Array.from({ length: 5 }, (_, n) => detection(n));
    await producer.send({ topic: stack.config.topics.detections, messages: detections.map((item) => ({ key: 'u-e2e', value: JSON.stringify(item) })), acks: -1 });
    await producer.disconnect();

    await waitFor('the resolution at both destinations', () => receiver.received.filter((item) => JSON.stringify(item.json).includes('resolve')).length >= 2, 30_000);
    await (vigil.notifier as Notifier).drain();

    const webhooks = receiver.received.filter((item) => item.path === '/webhook');
    expect(webhooks.map((item) => (item.json as { type: string }).type)).toEqual(['vigil.alert.opened', 'vigil.alert.resolved']);
    expect(webhooks.every((item) => item.signature === 'valid')).toBe(true);
    const resolved = (webhooks[1]?.json as { alert: { count: number; suppressed: number; status: string } }).alert;
    expect(resolved).toMatchObject({ count: 5, suppressed: 4, status: 'resolved' });

    const pagerduty = receiver.received.filter((item) => item.path === '/pagerduty').map((item) => item.json as { event_action: string; dedup_key: string });
    expect(pagerduty.map((event) => event.event_action)).toEqual(['trigger', 'resolve']);
    expect(new Set(pagerduty.map((event) => event.dedup_key)).size).toBe(1);
  });
});
