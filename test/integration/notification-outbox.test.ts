import { Redis } from 'ioredis';
import { StoreUnavailableError, ensureTopics, installTemplates, type Config } from '../../platform';
import type { Vigil } from '../../app';
import type { Detection } from '../../schemas';
import { startAlertReceiver } from '../../scripts/alert-receiver';
import { sampleDetection } from '../support/detections';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

const SECRET = 'outbox-webhook-secret-0123456789';

const detection = (n: number): Detection => sampleDetection(n, 'outbox');

/** A fetch standing for a receiver that is down: every attempt fails like a refused connection. */
function downReceiver(): { fetchImpl: typeof fetch; attempts: string[]; deliveryIds: string[] } {
  const attempts: string[] = [];
  const deliveryIds: string[] = [];
  const fetchImpl = ((url: string | URL | Request, init?: RequestInit) => {
    attempts.push(new URL(url instanceof Request ? url.url : url).pathname);
    // Webhooks carry the delivery id as a header (PagerDuty dedupes by its dedup_key instead).
    const id = new Headers(init?.headers).get('x-vigil-delivery');
    if (id) deliveryIds.push(id);
    return Promise.reject(new TypeError('fetch failed: connect ECONNREFUSED'));
  }) as typeof fetch;
  return { fetchImpl, attempts, deliveryIds };
}

/** The delivery ids of the webhooks the receiver got. */
const webhookIds = (received: readonly { path: string; headers: Record<string, unknown> }[]): string[] =>
  received.filter((item) => item.path === '/webhook').map((item) => String(item.headers['x-vigil-delivery']));

describe('the notification outbox: what the notifier accepted survives a crash', () => {
  let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
  let stack: Stack;
  let redis: Redis;
  const running: Vigil[] = [];

  function configFor(): Config {
    return isolatedConfig({
      // Long enough that no resolve comes in the middle of a test.
      VIGIL_ALERT_RESOLVE_AFTER_MS: '600000',
      // No holding for lateness: the batch folds its own detections, so an outbox failure fails the batch.
      VIGIL_ALERT_LATENESS_MS: '0',
      // No group wait: an opening goes as soon as it is noted (grouping has its own tests).
      VIGIL_ALERT_DESTINATIONS: JSON.stringify([
        { name: 'webhook', type: 'webhook', url: `${receiver.url}/webhook`, secret: SECRET, groupWaitMs: 0 },
        { name: 'pagerduty', type: 'pagerduty', url: `${receiver.url}/pagerduty`, routingKey: 'routing-key-outbox-0000000000', groupWaitMs: 0 },
      ]),
    });
  }

  async function startVigil(overrides: Parameters<typeof vigilOn>[1]): Promise<Vigil> {
    const vigil = vigilOn(stack, { roles: ['alerting'], redis, http: false, ...overrides });
    running.push(vigil);
    await vigil.start();
    return vigil;
  }

  async function sendDetections(count: number): Promise<void> {
    const producer = testProducer(stack.kafka);
    await producer.connect();
    const detections = Array.from({ length: count }, (_, n) => detection(n));
    await producer.send({ topic: stack.config.topics.detections, messages: detections.map((item) => ({ key: 'u-outbox', value: JSON.stringify(item) })), acks: -1 });
    await producer.disconnect();
  }

  beforeAll(async () => {
    receiver = await startAlertReceiver(SECRET);
  });

  beforeEach(async () => {
    receiver.received.length = 0;
    stack = openStack(configFor());
    redis = new Redis(stack.config.redis.url);
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterEach(async () => {
    for (const vigil of running.splice(0)) await vigil.stop();
    const keys = await redis.keys(`${stack.config.redis.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await stack.cleanup();
  });

  afterAll(async () => {
    await receiver.close();
  });

  it('delivers, after a crash, what was accepted while the receiver was down: once, with the same delivery ids', async () => {
    const down = downReceiver();
    const first = await startVigil({ fetchImpl: down.fetchImpl, notifierDrainMs: 0 });
    await sendDetections(5);
    // Both deliveries of the opening were accepted and tried (and failed): they are in flight.
    await waitFor('attempts at both destinations', () => new Set(down.attempts).size >= 2 && first.alerter?.stats().detections === 5, 30_000);
    expect(first.alerter?.stats()).toMatchObject({ opened: 1, updated: 4 });
    // The "crash": stop without letting the notifier finish; nothing was delivered.
    await first.stop();
    expect(receiver.received).toHaveLength(0);

    const second = await startVigil({});
    await waitFor('the opening at both destinations', () => receiver.received.length >= 2, 30_000);
    await (second.notifier as NonNullable<Vigil['notifier']>).drain();

    expect(webhookIds(receiver.received)).toEqual([...new Set(down.deliveryIds)]);
    expect(receiver.received.map((item) => item.path).sort()).toEqual(['/pagerduty', '/webhook']);
    const webhook = receiver.received.find((item) => item.path === '/webhook');
    expect(webhook?.signature).toBe('valid');
    expect((webhook?.json as { type: string }).type).toBe('vigil.alert.opened');
    // The first alerter committed its batch after the outbox had it: the second redid nothing.
    expect(second.alerter?.stats()).toMatchObject({ detections: 0, resent: 0 });
  });

  it('writes to the outbox, after a restart, a change made in Redis whose outbox write failed (the redone batch finds only duplicates)', async () => {
    let failing = true;
    let pauses = 0;
    const first = await startVigil({
      // The outbox write fails (as Kafka refusing it would): the batch is paused and redone.
      onAlertChange: () => {
        if (failing) throw new StoreUnavailableError('kafka', 'notification outbox: simulated outage');
      },
    });
    first.instrumentation.on('runner.pause', (event) => {
      if (event.component === 'alerter') pauses++;
    });
    await sendDetections(3);
    await waitFor('the batch failed twice (redone once)', () => pauses >= 2, 30_000);
    expect(first.alerter?.stats()).toMatchObject({ opened: 1 });
    await first.stop();
    failing = false;
    expect(receiver.received).toHaveLength(0);
    // The opening waits in Redis, recorded by the script that made it.
    expect(await redis.hlen(`${stack.config.redis.prefix}:{alerts}:unsent`)).toBe(1);

    const second = await startVigil({});
    await waitFor('the opening at both destinations', () => receiver.received.length >= 2, 30_000);
    await (second.notifier as NonNullable<Vigil['notifier']>).drain();
    expect(second.alerter?.stats().resent).toBe(1);
    expect(await second.metrics.metrics()).toMatch(/^vigil_alert_changes_resent_total 1$/m);
    const kinds = receiver.received.filter((item) => item.path === '/webhook').map((item) => (item.json as { type: string }).type);
    expect(kinds).toEqual(['vigil.alert.opened']);
    expect(receiver.received.map((item) => item.path).sort()).toEqual(['/pagerduty', '/webhook']);
    expect(await redis.hlen(`${stack.config.redis.prefix}:{alerts}:unsent`)).toBe(0);
  });

  it('sends each delivery once in the normal path, and a copy of a record in the outbox is skipped', async () => {
    const vigil = await startVigil({});
    await sendDetections(12);
    // Grouping (issue 9): the escalation goes with the opening when it came in the same chunk, or
    // waits for the group interval (5 minutes) when it came later; either way one notification each.
    await waitFor('the opening at both destinations', () => receiver.received.length >= 2 && (vigil.alerter?.stats().detections ?? 0) >= 12, 30_000);
    await waitFor('both outbox records of the escalation noted', () => (vigil.notifier?.outboxStats().accepted ?? 0) >= 4, 30_000);
    await (vigil.notifier as NonNullable<Vigil['notifier']>).drain();
    // A change written again (as after a crash between the outbox write and forgetting it in Redis).
    const alert = (receiver.received.find((item) => item.path === '/webhook')?.json as { alert: Parameters<NonNullable<Vigil['notifier']>['accept']>[0][number]['alert'] }).alert;
    await vigil.notifier?.accept([{ kind: 'opened', alert }]);
    await waitFor('the copy skipped', () => (vigil.notifier?.outboxStats().skipped ?? 0) >= 2, 30_000);
    expect(receiver.received).toHaveLength(2);
    const ids = webhookIds(receiver.received);
    expect(ids).toHaveLength(1);
    // On /metrics as well: 4 records accepted by the alerter, then the 2 of the copy; the copy's 2 skipped.
    const metrics = await vigil.metrics.metrics();
    expect(metrics).toMatch(/^vigil_notification_outbox_accepted_total 6$/m);
    expect(metrics).toMatch(/^vigil_notification_outbox_skipped_total 2$/m);
  });

  // A catch-up resending hundreds of changes: one destination's records share a partition, and
  // one send of them all passed the broker's message size limit (1 MiB by default), refused on
  // every retry, with every partition of the alerter waiting on it.
  it('writes a burst of changes larger than the broker takes in one send, all of them', async () => {
    const vigil = await startVigil({});
    await sendDetections(1);
    await waitFor('the opening at both destinations', () => receiver.received.length >= 2, 30_000);
    const notifier = vigil.notifier as NonNullable<Vigil['notifier']>;
    await notifier.drain();
    const alert = (receiver.received.find((item) => item.path === '/webhook')?.json as { alert: Parameters<NonNullable<Vigil['notifier']>['accept']>[0][number]['alert'] }).alert;
    const before = notifier.outboxStats().accepted;
    // 300 changes of as many alerts, each naming 100 detections (about 5 KB a record): about 1.5 MB per destination.
    const changes = Array.from({ length: 300 }, (_, n) => ({
      kind: 'opened' as const,
      alert: { ...alert, id: `${alert.id.slice(0, -4)}${String(n).padStart(4, '0')}`, detectionIds: Array.from({ length: 100 }, (_unused, k) => `det-outbox-burst-${n}-${k}-${'x'.repeat(16)}`) },
    }));
    await expect(notifier.accept(changes)).resolves.toBeUndefined();
    expect(notifier.outboxStats().accepted - before).toBe(600);
  });
});
