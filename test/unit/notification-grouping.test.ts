import { createLogger } from '../../platform';
import { alertSchema, type Alert, type AlertChange } from '../../schemas';
import {
  DEFAULT_GROUPING,
  completeOutgoing,
  createMemoryGroupStore,
  createNotifier,
  destinationSchema,
  dueAt,
  groupedDeliveryId,
  noteChange,
  parseDestinations,
  releaseOutgoing,
  takeDue,
  type Destination,
  type GroupState,
  type GroupingSettings,
  type Outgoing,
} from '../../detectors';

const SETTINGS: GroupingSettings = { groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 3_600_000 };
const LEASE = 60_000;

function alert(revision: number, overrides: Partial<Alert> = {}): Alert {
  return alertSchema.parse({
    id: 'al-group',
    status: 'open',
    severity: 'high',
    groupKey: 'actor.userId=u-1',
    key: { 'actor.userId': 'u-1' },
    title: 'Brute force on u-1',
    reason: `${revision * 10} failed logins`,
    rules: ['brute-force'],
    ruleNames: ['Brute force'],
    tags: [],
    count: revision * 10,
    suppressed: 0,
    firstSeen: '2026-03-01T10:00:00.000Z',
    lastSeen: '2026-03-01T10:01:00.000Z',
    detections: ['d-1'],
    revision,
    ...overrides,
  });
}

const opened = (revision = 1): AlertChange => ({ kind: 'opened', alert: alert(revision) });
const escalated = (revision: number): AlertChange => ({ kind: 'escalated', alert: alert(revision) });
const resolved = (revision: number): AlertChange => ({ kind: 'resolved', alert: alert(revision, { status: 'resolved', resolvedAt: '2026-03-01T10:30:00.000Z' }) });
/** A resolve the alerter decided after the paging window (it or the pipeline was behind). */
const resolvedLate = (revision: number): AlertChange => ({ ...resolved(revision), late: true });

/** A destination's grouping driven by a fake clock: changes noted, due work taken and confirmed at once. */
class Harness {
  state: GroupState | undefined;
  readonly sent: (Outgoing & { at: number })[] = [];
  constructor(private readonly settings: GroupingSettings = SETTINGS) {}

  note(change: AlertChange, at: number): boolean {
    const noted = noteChange(this.state, change, 'pager', at);
    this.state = noted.state;
    return noted.duplicate;
  }

  /** Takes what is due at `at` (while `silenced`, as a matching silence is in force) and confirms it sent. */
  tick(at: number, silenced = false): readonly Outgoing[] {
    if (this.state === undefined) return [];
    const taken = takeDue(this.state, this.settings, at, LEASE, silenced);
    if (taken === undefined) return [];
    this.sent.push(...taken.notifications.map((notification) => ({ ...notification, at })));
    this.state = completeOutgoing(taken.state, taken.notifications.map((notification) => notification.deliveryId));
    return taken.notifications;
  }

  /** Ticks every `step` ms from `from` to `to`, as the notifier's timer does. */
  run(from: number, to: number, step = 1000): void {
    for (let at = from; at <= to; at += step) this.tick(at);
  }

  kinds(): string[] {
    return this.sent.map((notification) => `${notification.change.kind}@${notification.change.alert.revision}`);
  }
}

describe('notification grouping policy (fake clock)', () => {
  it('sends an opened quickly followed by escalations as one opened with the latest state, escalations within a group interval as one, and the resolve', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    for (let revision = 2; revision <= 6; revision += 1) group.note(escalated(revision), revision * 1000);
    expect(group.tick(29_999)).toEqual([]);
    expect(group.tick(30_000).map((notification) => notification.change)).toEqual([{ kind: 'opened', alert: alert(6) }]);
    group.note(escalated(7), 40_000);
    group.note(escalated(8), 50_000);
    // Group interval: nothing until 5 minutes after the last notification.
    group.run(31_000, 329_000);
    expect(group.kinds()).toEqual(['opened@6']);
    group.run(330_000, 340_000);
    expect(group.kinds()).toEqual(['opened@6', 'escalated@8']);
    group.note(resolved(9), 400_000);
    group.tick(400_000);
    expect(group.kinds()).toEqual(['opened@6', 'escalated@8', 'resolved@9']);
    expect(group.state && dueAt(group.state, SETTINGS)).toBeNull();
  });

  // An outage longer than VIGIL_ALERT_PAGE_WITHIN_MS: the page opened before it must still close.
  it('sends a late resolve where the incident was announced, and cancels what waits', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.tick(30_000);
    group.note(escalated(2), 31_000);
    group.note(resolvedLate(3), 7 * 3_600_000);
    expect(group.tick(7 * 3_600_000).map((notification) => notification.change)).toEqual([resolvedLate(3)]);
    expect(group.kinds()).toEqual(['opened@1', 'resolved@3']);
    expect(group.state && dueAt(group.state, SETTINGS)).toBeNull();
  });

  it('ends silently an incident resolved late that this destination never heard of: no opened now, no repeats after', () => {
    // Still in its group wait when the late resolve came.
    const waiting = new Harness();
    waiting.note(opened(1), 0);
    waiting.note(resolvedLate(2), 1000);
    expect(waiting.tick(1000)).toEqual([]);
    waiting.run(1000, 2 * SETTINGS.repeatIntervalMs, 60_000);
    expect(waiting.kinds()).toEqual([]);
    expect(waiting.state?.finished).toBe(true);
    expect(waiting.state && dueAt(waiting.state, SETTINGS)).toBeNull();
    // Never noted at all (its opened was an old backlog's, not paged).
    const unknown = new Harness();
    unknown.note(resolvedLate(4), 0);
    unknown.run(0, 60_000);
    expect(unknown.kinds()).toEqual([]);
    expect(unknown.state?.finished).toBe(true);
  });

  it('lets the resolve cancel escalations still waiting for the group interval', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.tick(30_000);
    group.note(escalated(2), 31_000);
    group.note(resolved(3), 32_000);
    group.tick(32_000);
    expect(group.kinds()).toEqual(['opened@1', 'resolved@3']);
  });

  it('sends an incident resolved within its group wait as opened then resolved, at once', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.note(escalated(2), 1000);
    group.note(resolved(3), 2000);
    expect(group.tick(2000).map((notification) => notification.change.kind)).toEqual(['opened', 'resolved']);
    expect(group.kinds()).toEqual(['opened@2', 'resolved@3']);
  });

  it('skips copies: a revision noted before, and anything after the resolve went', () => {
    const group = new Harness();
    expect(group.note(opened(1), 0)).toBe(false);
    expect(group.note(opened(1), 10)).toBe(true);
    expect(group.note(escalated(3), 20)).toBe(false);
    expect(group.note(escalated(2), 30)).toBe(true);
    group.note(resolved(4), 40);
    group.tick(40);
    expect(group.note(resolved(4), 50)).toBe(true);
    expect(group.note(escalated(5), 60)).toBe(true);
    expect(group.tick(10_000_000)).toEqual([]);
  });

  it('repeats a still-open incident after the repeat interval, each repeat with its own delivery id', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.tick(30_000);
    group.run(31_000, 30_000 + 3_599_000, 60_000);
    expect(group.sent).toHaveLength(1);
    group.tick(30_000 + 3_600_000);
    group.tick(30_000 + 7_200_000);
    expect(group.kinds()).toEqual(['opened@1', 'opened@1', 'opened@1']);
    expect(new Set(group.sent.map((notification) => notification.deliveryId)).size).toBe(3);
    expect(group.sent[2]?.deliveryId).toBe(groupedDeliveryId(opened(1), 'pager', 2));
  });

  it('while a silence matches the incident, skips its repeats and drops what waits, and still sends its resolve', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.tick(30_000);
    // Silenced from here: the repeat due an hour later is skipped, and looked at again an hour after.
    expect(group.tick(30_000 + 3_600_000, true)).toEqual([]);
    expect(group.state && dueAt(group.state, SETTINGS)).toBe(30_000 + 7_200_000);
    // An escalation while silenced is dropped, not sent when the group interval passes.
    group.note(escalated(2), 3_700_000);
    expect(group.tick(30_000 + 7_200_000, true)).toEqual([]);
    expect(group.state?.pending).toBeNull();
    // The resolve closes the page the opened raised.
    group.note(resolved(3), 7_300_000);
    group.tick(7_300_000, true);
    expect(group.kinds()).toEqual(['opened@1', 'resolved@3']);
  });

  // Repeats carry the latest state: after a silence dropped an escalation, the page repeated the
  // old severity and count.
  it('repeats, once the silence is over, the escalation a silence dropped, not the older notification', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    group.tick(30_000);
    group.note(escalated(2), 100_000);
    // The escalation comes due under the silence: dropped, but kept as what a repeat sends.
    expect(group.tick(30_000 + 300_000, true)).toEqual([]);
    // The silence is over: the next repeat, a repeat interval later, is the escalated state.
    expect(group.state && dueAt(group.state, SETTINGS)).toBe(330_000 + 3_600_000);
    const repeated = group.tick(330_000 + 3_600_000);
    expect(repeated.map(({ change }) => `${change.kind}@${change.alert.revision}`)).toEqual(['escalated@2']);
  });

  // A silence made during the group wait, after the alerter let the opening through, dropped it:
  // nothing was due, and the incident was never paged when the silence ended.
  it('keeps an incident silenced before it was announced, looks again each group wait, and announces it once the silence ends', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    expect(group.tick(30_000, true)).toEqual([]);
    expect(group.state?.announced).toBe(false);
    expect(group.state && dueAt(group.state, SETTINGS)).toBe(60_000);
    expect(group.tick(60_000, true)).toEqual([]);
    // Escalated meanwhile: announced as opened, at its latest state.
    group.note(escalated(2), 70_000);
    expect(group.tick(90_000, true)).toEqual([]);
    group.tick(120_000);
    expect(group.kinds()).toEqual(['opened@2']);
  });

  it('sends nothing for an incident silenced before it was announced that resolves under the silence', () => {
    const group = new Harness();
    group.note(opened(1), 0);
    expect(group.tick(30_000, true)).toEqual([]);
    // Resolved under the silence: the alerter marks it late (sent only where the incident was announced).
    group.note(resolvedLate(2), 40_000);
    group.tick(40_000, true);
    group.tick(200_000);
    expect(group.kinds()).toEqual([]);
    expect(group.state?.finished).toBe(true);
  });

  it('never repeats with a repeat interval of 0', () => {
    const group = new Harness({ ...SETTINGS, repeatIntervalMs: 0 });
    group.note(opened(1), 0);
    group.tick(30_000);
    expect(group.state && dueAt(group.state, { ...SETTINGS, repeatIntervalMs: 0 })).toBeNull();
  });

  it('leases what it hands out: not handed out again before the lease ends, then again with the same delivery ids', () => {
    let state = noteChange(undefined, opened(1), 'pager', 0).state;
    const first = takeDue(state, SETTINGS, 30_000, LEASE);
    expect(first?.notifications).toHaveLength(1);
    state = first?.state ?? state;
    expect(takeDue(state, SETTINGS, 30_000 + LEASE - 1, LEASE)).toBeUndefined();
    const again = takeDue(state, SETTINGS, 30_000 + LEASE, LEASE);
    expect(again?.notifications).toEqual(first?.notifications);
    // Confirming with other ids (someone else's lease) changes nothing; released, it is due at once.
    expect(completeOutgoing(state, ['another'])).toBe(state);
    expect(dueAt(releaseOutgoing(state), SETTINGS)).toBe(0);
  });

  // A destination paging on opened alone was sent a resolved incident again every repeat interval.
  it('ends the incident at a destination that does not take resolved: the resolve is not sent, and nothing repeats after it', () => {
    const settings = { ...SETTINGS, sendsResolved: false };
    const group = new Harness(settings);
    group.note(opened(1), 0);
    group.tick(30_000);
    group.note(escalated(2), 31_000);
    group.note(resolved(3), 32_000);
    expect(group.tick(32_000)).toEqual([]);
    group.run(33_000, 30_000 + 5 * 3_600_000, 60_000);
    expect(group.kinds()).toEqual(['opened@1']);
    expect(group.state).toMatchObject({ finished: true, outgoing: null, resolved: null, pending: null });
    expect(group.state && dueAt(group.state, settings)).toBeNull();
  });

  it('still announces an incident resolved within its group wait at a destination that does not take resolved', () => {
    const group = new Harness({ ...SETTINGS, sendsResolved: false });
    group.note(opened(1), 0);
    group.note(resolved(2), 1000);
    expect(group.tick(1000).map((notification) => notification.change.kind)).toEqual(['opened']);
    group.run(2000, 5 * 3_600_000, 60_000);
    expect(group.kinds()).toEqual(['opened@1']);
  });

  it('keeps the kind of the first notification for a destination that does not take opened', () => {
    const group = new Harness({ ...SETTINGS, announceAsOpened: false });
    group.note(escalated(2), 0);
    group.tick(30_000);
    expect(group.kinds()).toEqual(['escalated@2']);
  });

  it('gives stable UUID-shaped delivery ids that differ by change, destination and repeat', () => {
    const id = groupedDeliveryId(opened(1), 'pager');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(groupedDeliveryId(opened(1), 'pager')).toBe(id);
    expect(new Set([id, groupedDeliveryId(opened(2), 'pager'), groupedDeliveryId(opened(1), 'chat'), groupedDeliveryId(opened(1), 'pager', 1)]).size).toBe(4);
  });

  it('bounds an incident shorter than its repeat interval to opened, one escalation per group interval and the resolve (seeded sequences)', () => {
    let seed = 9;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let run = 0; run < 200; run += 1) {
      const group = new Harness();
      // Opened, then 1 to 20 escalations anywhere within the group wait and one group interval, then the resolve.
      const span = SETTINGS.groupWaitMs + SETTINGS.groupIntervalMs;
      const times = Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * span)).sort((a, b) => a - b);
      group.note(opened(1), 0);
      let at = 0;
      times.forEach((time, index) => {
        group.run(at, time);
        at = time;
        group.note(escalated(index + 2), time);
      });
      const end = span + Math.floor(random() * 100_000);
      group.run(at, end);
      group.note(resolved(times.length + 2), end);
      group.tick(end);
      group.run(end, end + 2 * SETTINGS.groupIntervalMs);
      expect(group.sent.length).toBeLessThanOrEqual(3);
      expect(group.sent[0]?.change.kind).toBe('opened');
      expect(group.sent.at(-1)?.change.kind).toBe('resolved');
    }
  });
});

describe('destination grouping settings', () => {
  const base = { type: 'slack', name: 'chat', url: 'https://hooks.slack.com/services/T/B/x' };

  it("defaults to Alertmanager's", () => {
    const [parsed] = parseDestinations(JSON.stringify([base]));
    expect(parsed).toMatchObject({ groupWaitMs: DEFAULT_GROUPING.groupWaitMs, groupIntervalMs: DEFAULT_GROUPING.groupIntervalMs, repeatIntervalMs: DEFAULT_GROUPING.repeatIntervalMs });
  });

  it('names each bad value', () => {
    expect(() => parseDestinations(JSON.stringify([{ ...base, groupWaitMs: -1, groupIntervalMs: 'soon', repeatIntervalMs: 5 }]))).toThrow(
      expect.objectContaining({
        issues: [
          expect.stringMatching(/^destinations\[0\]\.groupWaitMs: /),
          expect.stringMatching(/^destinations\[0\]\.groupIntervalMs: /),
          'destinations[0].repeatIntervalMs: at least 60000 (1 minute), or 0 for never',
        ],
      }) as Error,
    );
  });
});

describe('createNotifier with grouping (memory store, scripted fetch)', () => {
  function receiver(): { fetchImpl: typeof fetch; calls: { url: string; kind: string; deliveryId: string }[] } {
    const calls: { url: string; kind: string; deliveryId: string }[] = [];
    const fetchImpl = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const headers = { ...(init?.headers as Record<string, string>) };
      const body = JSON.parse(typeof init?.body === 'string' ? init.body : '{}') as { type?: string; event_action?: string };
      calls.push({ url, kind: headers['x-vigil-event'] ?? body.event_action ?? body.type ?? 'slack', deliveryId: headers['x-vigil-delivery'] ?? '' });
      return Promise.resolve(new Response(null, { status: 202 }));
    };
    return { fetchImpl, calls };
  }

  const destinations = (): Destination[] =>
    [
      { type: 'webhook', name: 'hook', url: 'https://hooks.example.com/hook', secret: 'a-webhook-secret-of-32-characters' },
      { type: 'slack', name: 'chat', url: 'https://hooks.example.com/chat' },
      { type: 'pagerduty', name: 'pager', url: 'https://hooks.example.com/pager', routingKey: 'rk-1' },
    ].map((entry) => destinationSchema.parse({ ...entry, groupWaitMs: 1000, groupIntervalMs: 60_000 }));

  const until = async (what: () => boolean): Promise<void> => {
    for (let tries = 0; !what(); tries += 1) {
      if (tries > 500) throw new Error('condition not reached');
      await new Promise((done) => setTimeout(done, 5));
    }
  };

  it('sends a notification once while its destination is away for longer than the lease: the sender renews it, and neither it nor another instance takes it again', async () => {
    const store = createMemoryGroupStore();
    const startedAt = Date.now();
    const delivered: string[] = [];
    let refused = 0;
    const fetchImpl = (_input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      // Away for 800 ms: more than two leases of 300 ms.
      if (Date.now() - startedAt < 800) {
        refused += 1;
        return Promise.resolve(new Response('down', { status: 503 }));
      }
      delivered.push(typeof init?.body === 'string' ? init.body : '');
      return Promise.resolve(new Response(null, { status: 200 }));
    };
    const chat = destinationSchema.parse({ type: 'slack', name: 'chat', url: 'https://hooks.example.com/chat', groupWaitMs: 0 });
    const make = () =>
      createNotifier({ destinations: [chat], deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }), retryForMs: 5_000, initialDelayMs: 20, maxDelayMs: 50, grouping: { store, pollEveryMs: 20, leaseMs: 300 } });
    const [one, two] = [make(), make()];
    one.notify(opened(1));
    await one.drain();
    await until(() => delivered.length >= 1 && Date.now() - startedAt > 1_300);
    await Promise.all([one.stop(1000), two.stop(1000)]);
    expect(refused).toBeGreaterThan(5);
    expect(delivered).toHaveLength(1);
    expect(one.stats().sent + two.stats().sent).toBe(1);
  });

  it('stops repeating an incident at a destination that pages on opened and escalated only, once it is resolved', async () => {
    let clock = 1_772_000_000_000;
    const store = createMemoryGroupStore();
    const { fetchImpl, calls } = receiver();
    const pager = destinationSchema.parse({ type: 'pagerduty', name: 'pager', url: 'https://hooks.example.com/pager', routingKey: 'rk-1', events: ['opened', 'escalated'], groupWaitMs: 0, repeatIntervalMs: 3_600_000 });
    const hook = destinationSchema.parse({ type: 'webhook', name: 'hook', url: 'https://hooks.example.com/hook', secret: 'a-webhook-secret-of-32-characters', groupWaitMs: 0, repeatIntervalMs: 3_600_000 });
    const notifier = createNotifier({ destinations: [pager, hook], deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }), now: () => clock, grouping: { store, pollEveryMs: 2 } });
    notifier.notify(opened(1));
    await until(() => calls.length >= 2);
    clock += 60_000;
    notifier.notify(resolved(2));
    await until(() => calls.length >= 3);
    for (let hour = 1; hour <= 4; hour += 1) {
      clock += 3_600_000;
      await new Promise((done) => setTimeout(done, 30));
    }
    await notifier.stop(1000);
    expect(calls.map((call) => `${call.url.split('/').at(-1)}:${call.kind}`)).toEqual(['pager:trigger', 'hook:opened', 'hook:resolved']);
  });

  it('closes with a late resolve the page it opened, and announces nothing for an incident resolved late that it never paged', async () => {
    const store = createMemoryGroupStore();
    const { fetchImpl, calls } = receiver();
    const pager = destinationSchema.parse({ type: 'pagerduty', name: 'pager', url: 'https://hooks.example.com/pager', routingKey: 'rk-1', groupWaitMs: 0 });
    const notifier = createNotifier({ destinations: [pager], deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }), grouping: { store, pollEveryMs: 2 } });
    notifier.notify(opened(1));
    await until(() => calls.length >= 1);
    notifier.notify(resolvedLate(2));
    notifier.notify({ kind: 'resolved', late: true, alert: alert(3, { id: 'al-never-paged', status: 'resolved', resolvedAt: '2026-03-01T10:30:00.000Z' }) });
    await until(() => calls.length >= 2);
    await new Promise((done) => setTimeout(done, 50));
    await notifier.stop(1000);
    expect(calls.map((call) => call.kind)).toEqual(['trigger', 'resolve']);
  });

  it('sends nothing of a silenced incident but its resolve: no repeat, no escalation; the page it opened before the silence is closed', async () => {
    let clock = 1_772_000_000_000;
    let silenced = false;
    const store = createMemoryGroupStore();
    const { fetchImpl, calls } = receiver();
    const pager = destinationSchema.parse({ type: 'pagerduty', name: 'pager', url: 'https://hooks.example.com/pager', routingKey: 'rk-1', groupWaitMs: 0, groupIntervalMs: 0, repeatIntervalMs: 3_600_000 });
    const silence = { id: 's-1', matchers: { 'actor.userId': 'u-1' }, startsAt: '2026-01-01T00:00:00.000Z', endsAt: '2027-01-01T00:00:00.000Z', comment: 'handled' };
    const silences = { active: () => Promise.resolve(silenced ? [silence] : []) };
    const notifier = createNotifier({ destinations: [pager], deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }), now: () => clock, grouping: { store, pollEveryMs: 2, silences } });
    notifier.notify(opened(1));
    await until(() => calls.length >= 1);
    silenced = true;
    for (let hour = 1; hour <= 3; hour += 1) {
      clock += 3_600_000;
      if (hour === 2) notifier.notify(escalated(2));
      await new Promise((done) => setTimeout(done, 30));
    }
    notifier.notify(resolved(3));
    await until(() => calls.length >= 2);
    await new Promise((done) => setTimeout(done, 30));
    await notifier.stop(1000);
    expect(calls.map((call) => call.kind)).toEqual(['trigger', 'resolve']);
  });

  it('without grouping, sends no late resolve: nothing says the destination heard of the incident', async () => {
    const { fetchImpl, calls } = receiver();
    const notifier = createNotifier({ destinations: destinations(), deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }) });
    notifier.notify(resolvedLate(2));
    notifier.notify(resolved(3));
    await notifier.drain();
    await notifier.stop(1000);
    expect(calls.map((call) => `${call.url.split('/').at(-1)}:${call.kind}`).sort()).toEqual(['chat:slack', 'hook:resolved', 'pager:resolve']);
  });

  it('sends opened + 5 quick escalations + resolved as at most 3 notifications per destination, even from two instances', async () => {
    let clock = 1_772_000_000_000;
    const store = createMemoryGroupStore();
    const { fetchImpl, calls } = receiver();
    const make = () =>
      createNotifier({ destinations: destinations(), deadLetterTopic: 'unused', fetchImpl, logger: createLogger({ level: 'silent' }), now: () => clock, grouping: { store, pollEveryMs: 2 } });
    const [one, two] = [make(), make()];
    one.notify(opened(1));
    await one.drain();
    clock += 1000;
    await until(() => calls.length >= 3);
    for (let revision = 2; revision <= 6; revision += 1) (revision % 2 === 0 ? one : two).notify(escalated(revision));
    await Promise.all([one.drain(), two.drain()]);
    clock += 60_000;
    await until(() => calls.length >= 6);
    two.notify(resolved(7));
    await until(() => calls.length >= 9);
    await Promise.all([one.stop(1000), two.stop(1000)]);

    for (const name of ['hook', 'chat', 'pager']) {
      const mine = calls.filter((call) => call.url.endsWith(name));
      expect(mine).toHaveLength(3);
    }
    expect(calls.filter((call) => call.url.endsWith('hook')).map((call) => call.kind)).toEqual(['opened', 'escalated', 'resolved']);
    expect(calls.filter((call) => call.url.endsWith('pager')).map((call) => call.kind)).toEqual(['trigger', 'trigger', 'resolve']);
    expect(new Set(calls.filter((call) => call.url.endsWith('hook')).map((call) => call.deliveryId)).size).toBe(3);
    expect(one.outboxStats().grouped + two.outboxStats().grouped).toBe(3 * 4);
  });
});
