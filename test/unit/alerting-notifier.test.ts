import { createHmac } from 'node:crypto';
import { ValidationError, createLogger, loadConfig, secretsOf, urlSecrets } from '../../platform';
import { alertSchema, type Alert, type AlertChange } from '../../schemas';
import { destinationSchema, parseDestinations, routesFor, type Destination, type DestinationInput } from '../../detectors';
import { signPayload, verifySignature } from '../../detectors';
import { createNotifier, formatPagerDuty, formatSlack, formatWebhook, type NotifierOptions } from '../../detectors';
import { postOnce } from '../../detectors/alerting/notify/http';
import type { NotificationError } from '../../detectors/alerting/notify/notification-error';

const SECRET = 'a-webhook-secret-of-32-characters';

function alert(overrides: Partial<Alert> = {}): Alert {
  return alertSchema.parse({
    id: 'al-7f3a',
    status: 'open',
    severity: 'high',
    groupKey: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
    key: { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/v1/login' },
    title: 'Login surge on accounts-v1 /v1/login',
    reason: 'accounts-v1 /v1/login had 5200 requests in 1m, 10.4x its baseline of 500.',
    rules: ['dos-surge-endpoint', 'auth-failures'],
    ruleNames: ['Request surge per endpoint', 'Authentication failures'],
    tags: ['T1498', 'dos'],
    count: 12,
    suppressed: 11,
    firstSeen: '2026-03-01T10:00:00.000Z',
    lastSeen: '2026-03-01T10:04:00.000Z',
    detections: ['d-1', 'd-2'],
    revision: 3,
    ...overrides,
  });
}

const change = (kind: AlertChange['kind'], overrides: Partial<Alert> = {}): AlertChange => ({ kind, alert: alert(overrides) });

function destination(input: Partial<DestinationInput> & Pick<DestinationInput, 'type'>): Destination {
  const base = { name: `d-${input.type}`, url: 'https://hooks.example.com/x' };
  const extra = input.type === 'webhook' ? { secret: SECRET } : input.type === 'pagerduty' ? { routingKey: 'rk-123' } : {};
  return destinationSchema.parse({ ...base, ...extra, ...input });
}

function issuesOf(json: string): readonly string[] {
  try {
    parseDestinations(json);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues;
  }
  throw new Error('expected parseDestinations to throw');
}

describe('parseDestinations', () => {
  it('applies the defaults', () => {
    const [parsed] = parseDestinations(JSON.stringify([{ type: 'slack', name: 'sec-channel', url: 'https://hooks.slack.com/services/T/B/x' }]));
    expect(parsed).toEqual({
      type: 'slack',
      name: 'sec-channel',
      url: 'https://hooks.slack.com/services/T/B/x',
      minSeverity: 'low',
      events: ['opened', 'escalated', 'resolved'],
      timeoutMs: 5000,
      groupWaitMs: 30_000,
      groupIntervalMs: 300_000,
      repeatIntervalMs: 14_400_000,
    });
  });

  it('reads all three types', () => {
    const parsed = parseDestinations(
      JSON.stringify([
        { type: 'webhook', name: 'soar', url: 'http://soar.internal:8080/hook', secret: SECRET, tags: ['dos'], events: ['opened'] },
        { type: 'slack', name: 'chat', url: 'https://hooks.slack.com/services/T/B/x', minSeverity: 'medium' },
        { type: 'pagerduty', name: 'pager', url: 'https://events.pagerduty.com/v2/enqueue', routingKey: 'R0UT1NG', minSeverity: 'high', timeoutMs: 2000 },
      ]),
    );
    expect(parsed.map((entry) => entry.type)).toEqual(['webhook', 'slack', 'pagerduty']);
  });

  it('accepts an empty list', () => {
    expect(parseDestinations('[]')).toEqual([]);
  });

  it('refuses text that is not JSON without quoting it (it holds secrets)', () => {
    const issues = issuesOf('[{"type":"webhook","secret":"s3cr3t-value-0123456789"');
    expect(issues).toEqual(['destinations: not valid JSON']);
    expect(issues.join()).not.toContain('s3cr3t');
  });

  it('refuses a URL holding a user name or password, without quoting it (fetch refuses it on every attempt)', () => {
    const issues = issuesOf(JSON.stringify([{ type: 'slack', name: 'basic', url: 'https://oncall:P4ssw0rd-TOKEN@hooks.example.com/hook' }]));
    expect(issues).toEqual([expect.stringMatching(/^destinations\[0\]\.url: must not hold a user name or password/) as unknown]);
    expect(issues.join()).not.toContain('P4ssw0rd');
  });

  it('refuses a top level that is not an array', () => {
    expect(issuesOf('{"type":"slack"}')).toEqual(['destinations: expected a JSON array of destinations']);
  });

  it('names the index and the field of every problem', () => {
    const issues = issuesOf(
      JSON.stringify([
        { type: 'slack', name: 'ok', url: 'https://hooks.example.com/a' },
        { type: 'webhook', name: 'short', url: 'https://hooks.example.com/b', secret: 'too-short' },
        { type: 'pagerduty', name: 'no-key', url: 'https://events.pagerduty.com/v2/enqueue' },
        { type: 'slack', name: 'ftp', url: 'ftp://files.example.com/x' },
        { type: 'email', name: 'mail', url: 'https://example.com' },
        { type: 'slack', name: 'sev', url: 'https://hooks.example.com/c', minSeverity: 'urgent', events: ['opened', 'closed'] },
        { type: 'slack', name: 'typo', url: 'https://hooks.example.com/d', minSeverty: 'high' },
        { type: 'slack', name: 'tags', url: 'https://hooks.example.com/e', tags: [] },
        { type: 'slack', name: 'ok', url: 'https://hooks.example.com/f' },
      ]),
    );
    expect(issues).toEqual([
      expect.stringMatching(/^destinations\[1\]\.secret: .*16/),
      expect.stringMatching(/^destinations\[2\]\.routingKey: /),
      'destinations[3].url: expected an http or https URL',
      expect.stringMatching(/^destinations\[4\]\.type: .*'webhook' \| 'slack' \| 'pagerduty'/),
      expect.stringMatching(/^destinations\[5\]\.minSeverity: /),
      expect.stringMatching(/^destinations\[5\]\.events\[1\]: /),
      expect.stringMatching(/^destinations\[6\]: .*minSeverty/),
      expect.stringMatching(/^destinations\[7\]\.tags: /),
      'destinations[8].name: "ok" is already the name of destinations[0]',
    ]);
  });

  it('says which variable it is about in the error code', () => {
    expect(() => parseDestinations('nope')).toThrow(expect.objectContaining({ code: 'destinations_invalid', retriable: false }) as Error);
  });
});

describe('routesFor', () => {
  const all = destination({ type: 'slack', name: 'all' });
  const highUp = destination({ type: 'pagerduty', name: 'high-up', minSeverity: 'high' });
  const dosOnly = destination({ type: 'webhook', name: 'dos-only', tags: ['dos', 'availability'] });
  const openedOnly = destination({ type: 'slack', name: 'opened-only', events: ['opened'] });
  const destinations = [all, highUp, dosOnly, openedOnly];
  const names = (routed: Destination[]): string[] => routed.map((entry) => entry.name);

  it('sends a change to every destination that takes it, in configuration order', () => {
    expect(names(routesFor(destinations, change('opened')))).toEqual(['all', 'high-up', 'dos-only', 'opened-only']);
  });

  it('honours minSeverity', () => {
    expect(names(routesFor(destinations, change('opened', { severity: 'medium' })))).not.toContain('high-up');
    expect(names(routesFor(destinations, change('opened', { severity: 'critical' })))).toContain('high-up');
  });

  it('honours tags: at least one in common', () => {
    expect(names(routesFor(destinations, change('opened', { tags: ['availability'] })))).toContain('dos-only');
    expect(names(routesFor(destinations, change('opened', { tags: ['fraud'] })))).not.toContain('dos-only');
    expect(names(routesFor(destinations, change('opened', { tags: [] })))).not.toContain('dos-only');
  });

  it('honours events', () => {
    expect(names(routesFor(destinations, change('resolved')))).toEqual(['all', 'high-up', 'dos-only']);
    expect(names(routesFor(destinations, change('escalated')))).not.toContain('opened-only');
  });

  it('routes nowhere without destinations', () => {
    expect(routesFor([], change('opened'))).toEqual([]);
  });
});

describe('signature', () => {
  const body = JSON.stringify({ type: 'vigil.alert.opened', alert: { id: 'al-1' } });
  const t = 1_772_000_000;

  it('has the documented format and value', () => {
    const header = signPayload(SECRET, body, t);
    expect(header).toMatch(/^t=1772000000,v1=[0-9a-f]{64}$/);
    // Independent of the implementation: HMAC-SHA256 of "<t>.<body>".
    expect(header).toBe(`t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`);
  });

  it('round-trips, from a string or from the raw bytes', () => {
    const header = signPayload(SECRET, body, t);
    expect(verifySignature(SECRET, header, body, t + 10)).toEqual({ ok: true });
    expect(verifySignature(SECRET, header, Buffer.from(body), t)).toEqual({ ok: true });
  });

  it('refuses a tampered body, a tampered timestamp and a wrong secret', () => {
    const header = signPayload(SECRET, body, t);
    expect(verifySignature(SECRET, header, body.replace('al-1', 'al-2'), t)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(SECRET, header.replace(`t=${t}`, `t=${t + 1}`), body, t)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(`${SECRET}x`, header, body, t)).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses a replay outside the tolerance, in either direction', () => {
    const header = signPayload(SECRET, body, t);
    expect(verifySignature(SECRET, header, body, t + 300)).toEqual({ ok: true });
    expect(verifySignature(SECRET, header, body, t + 301)).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, body, t - 301)).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, body, t + 3600, 7200)).toEqual({ ok: true });
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['no timestamp', `v1=${'a'.repeat(64)}`],
    ['short mac', `t=${t},v1=abc`],
    ['upper-case hex', `t=${t},v1=${'A'.repeat(64)}`],
    ['other scheme', `t=${t},v0=${'a'.repeat(64)}`],
    ['negative time', `t=-5,v1=${'a'.repeat(64)}`],
    ['trailing data', `t=${t},v1=${'a'.repeat(64)},v1=${'b'.repeat(64)}`],
  ])('refuses a malformed header (%s)', (_case, header) => {
    expect(verifySignature(SECRET, header, body, t)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('formatWebhook', () => {
  it('wraps the alert with its type, delivery id and time', () => {
    const escalated = change('escalated');
    expect(formatWebhook(escalated, { deliveryId: 'dl-1', sentAt: '2026-03-01T10:05:00.000Z' })).toEqual({
      type: 'vigil.alert.escalated',
      deliveryId: 'dl-1',
      sentAt: '2026-03-01T10:05:00.000Z',
      alert: escalated.alert,
    });
  });
});

describe('formatSlack', () => {
  it('has a one-line text and blocks with reason, rules, times and id', () => {
    expect(formatSlack(change('opened'))).toEqual({
      text: '[HIGH] Login surge on accounts-v1 /v1/login | 12 detections | opened',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', verbatim: true, text: '*[HIGH] Login surge on accounts-v1 /v1/login | 12 detections | opened*' } },
        { type: 'section', text: { type: 'mrkdwn', verbatim: true, text: '*Reason*\naccounts-v1 /v1/login had 5200 requests in 1m, 10.4x its baseline of 500.' } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', verbatim: true, text: '*Rules*\nRequest surge per endpoint (dos-surge-endpoint)\nAuthentication failures (auth-failures)' },
            { type: 'mrkdwn', verbatim: true, text: '*Severity*\nhigh' },
            { type: 'mrkdwn', verbatim: true, text: '*First seen*\n2026-03-01T10:00:00.000Z' },
            { type: 'mrkdwn', verbatim: true, text: '*Last seen*\n2026-03-01T10:04:00.000Z' },
            { type: 'mrkdwn', verbatim: true, text: '*Key*\ninvocation.resource.api=accounts-v1,invocation.route=/v1/login' },
          ],
        },
        { type: 'context', elements: [{ type: 'mrkdwn', verbatim: true, text: 'Alert id: al-7f3a' }] },
      ],
    });
  });

  it('says when it was resolved, and counts in the singular', () => {
    const message = formatSlack(change('resolved', { status: 'resolved', resolvedAt: '2026-03-01T10:20:00.000Z', count: 1 }));
    expect(message.text).toBe('[HIGH] Login surge on accounts-v1 /v1/login | 1 detection | resolved');
    expect(message.blocks[2]).toEqual(expect.objectContaining({ fields: expect.arrayContaining([{ type: 'mrkdwn', verbatim: true, text: '*Resolved*\n2026-03-01T10:20:00.000Z' }]) as unknown }));
  });

  it('cuts a long reason by whole characters: no half of an emoji', () => {
    const reason = `${'x'.repeat(2986)}${'🚨'.repeat(20)}`;
    const block = formatSlack(change('opened', { reason })).blocks[1] as { text: { text: string } };
    expect(block.text.text.endsWith('…')).toBe(true);
    expect(Buffer.from(block.text.text, 'utf8').toString('utf8')).toBe(block.text.text); // no lone surrogate
    expect(Array.from(block.text.text)).toHaveLength(3000 - 12 + '*Reason*\n'.length);
  });

  it('escapes what event data could use to ping a channel or hide a link', () => {
    const message = formatSlack(change('opened', { title: 'route /x<!channel>', reason: 'see <https://evil.example|login> & more' }));
    const everything = JSON.stringify(message);
    expect(everything).not.toMatch(/<!channel>|<https:/);
    expect(message.text).toContain('/x&lt;!channel&gt;');
    expect(JSON.stringify(message.blocks[1])).toContain('see &lt;https://evil.example|login&gt; &amp; more');
  });

  it('keeps within Slack limits', () => {
    const message = formatSlack(change('opened', { reason: '<'.repeat(5000), title: 't'.repeat(1000) }));
    const reason = message.blocks[1] as { text: { text: string } };
    expect(reason.text.text.length).toBeLessThanOrEqual(3000);
    expect(reason.text.text).toMatch(/(&lt;)+…$/);
    expect(message.text.length).toBeLessThan(400);
  });
  // On-call read one source's sentence for a 17-IP campaign, with nowhere to click.
  it("shows a campaign's top sources, its entities, and a link to the alert in Kibana", () => {
    const evidence = {
      total: 17,
      entities: 17,
      rules: [{ rule: 'authn-failures-per-ip', count: 17 }],
      top: Array.from({ length: 7 }, (_, index) => ({ entity: `client.ip=203.0.113.${index + 1}`, count: 7 - index })),
      summary: 'Folded 17 detections (authn-failures-per-ip 17) from 17 IPs.',
    };
    const link = 'https://kibana.example.com/app/discover#/view/vigil-search-open-alerts?_g=y&_a=x';
    const message = formatSlack(change('opened', { evidence, campaign: true, entities: ['client.ip=203.0.113.1', 'actor.userId=u-1'] }), link);
    expect(message.blocks.slice(2)).toEqual([
      expect.objectContaining({ fields: expect.arrayContaining([{ type: 'mrkdwn', verbatim: true, text: '*Entities*\nclient.ip=203.0.113.1\nactor.userId=u-1' }]) as unknown }),
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          verbatim: true,
          text: '*Evidence*\nFolded 17 detections (authn-failures-per-ip 17) from 17 IPs.\nTop: client.ip=203.0.113.1 (7), client.ip=203.0.113.2 (6), client.ip=203.0.113.3 (5), client.ip=203.0.113.4 (4), client.ip=203.0.113.5 (3)',
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', verbatim: true, text: `<${link.replace('&', '&amp;')}|Open in Kibana> · Alert id: al-7f3a` }] },
    ]);
    const trigger = formatPagerDuty(change('opened', { evidence }), 'rk-123', link);
    expect(trigger).toMatchObject({ links: [{ href: link, text: 'Open in Kibana' }], payload: { custom_details: { evidence } } });
  });

  it('leaves out a link that is not a plain http(s) address', () => {
    const message = formatSlack(change('opened'), 'https://kibana.example.com/x|<!channel>');
    expect(JSON.stringify(message)).not.toContain('Open in Kibana');
  });
});

describe('formatPagerDuty', () => {
  it('triggers on opened with the Events API v2 shape', () => {
    expect(formatPagerDuty(change('opened'), 'rk-123')).toEqual({
      routing_key: 'rk-123',
      event_action: 'trigger',
      dedup_key: 'al-7f3a',
      payload: {
        summary: '[HIGH] Login surge on accounts-v1 /v1/login: accounts-v1 /v1/login had 5200 requests in 1m, 10.4x its baseline of 500.',
        source: 'vigil',
        severity: 'error',
        timestamp: '2026-03-01T10:04:00.000Z',
        component: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
        group: 'T1498,dos',
        class: 'dos-surge-endpoint',
        custom_details: {
          change: 'opened',
          alertId: 'al-7f3a',
          title: 'Login surge on accounts-v1 /v1/login',
          reason: 'accounts-v1 /v1/login had 5200 requests in 1m, 10.4x its baseline of 500.',
          count: 12,
          suppressed: 11,
          key: { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/v1/login' },
          rules: ['dos-surge-endpoint', 'auth-failures'],
          ruleNames: ['Request surge per endpoint', 'Authentication failures'],
          tags: ['T1498', 'dos'],
          firstSeen: '2026-03-01T10:00:00.000Z',
          lastSeen: '2026-03-01T10:04:00.000Z',
          detections: ['d-1', 'd-2'],
          revision: 3,
        },
      },
    });
  });

  it('triggers again on escalated, with the same dedup_key', () => {
    const event = formatPagerDuty(change('escalated', { severity: 'critical' }), 'rk-123');
    expect(event).toMatchObject({ event_action: 'trigger', dedup_key: 'al-7f3a', payload: { severity: 'critical' } });
  });

  it('resolves with nothing but the routing and dedup keys', () => {
    expect(formatPagerDuty(change('resolved', { status: 'resolved' }), 'rk-123')).toEqual({ routing_key: 'rk-123', event_action: 'resolve', dedup_key: 'al-7f3a' });
  });

  it.each([
    ['critical', 'critical'],
    ['high', 'error'],
    ['medium', 'warning'],
    ['low', 'info'],
  ] as const)('maps %s to %s', (severity, expected) => {
    expect(formatPagerDuty(change('opened', { severity }), 'rk')).toMatchObject({ payload: { severity: expected } });
  });

  it('cuts the summary to 1024 characters without splitting a character', () => {
    const event = formatPagerDuty(change('opened', { reason: '🚨'.repeat(2000) }), 'rk');
    if (event.event_action !== 'trigger') throw new Error('expected a trigger');
    expect(Array.from(event.payload.summary)).toHaveLength(1024);
    expect(event.payload.summary.endsWith('🚨…')).toBe(true);
  });

  it('has a group and a class when the alert has no tags or rules', () => {
    expect(formatPagerDuty(change('opened', { tags: [], rules: [], ruleNames: [] }), 'rk')).toMatchObject({ payload: { group: 'vigil', class: 'unknown' } });
  });
});

/** A fetch that answers from a script and records what it was sent: the notifier's logic, no network. */
function scriptedFetch(answer: (url: string, count: number) => Response | Promise<Response>): { fetchImpl: typeof fetch; calls: { url: string; body: string; headers: Record<string, string> }[] } {
  const calls: { url: string; body: string; headers: Record<string, string> }[] = [];
  const fetchImpl = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    calls.push({ url, body: typeof init?.body === 'string' ? init.body : '', headers: { ...(init?.headers as Record<string, string>) } });
    return Promise.resolve(answer(url, calls.filter((call) => call.url === url).length));
  };
  return { fetchImpl, calls };
}

describe('createNotifier (scripted fetch, no network)', () => {
  const base = (fetchImpl: typeof fetch, destinations: Destination[], extra: Partial<NotifierOptions> = {}): NotifierOptions => ({
    destinations,
    deadLetterTopic: 'unused',
    fetchImpl,
    initialDelayMs: 1,
    maxDelayMs: 5,
    logger: createLogger({ level: 'silent' }),
    ...extra,
  });

  it('signs webhooks with a fresh timestamp per attempt and keeps the delivery id', async () => {
    let clock = 1_772_000_000_000;
    const { fetchImpl, calls } = scriptedFetch((_url, count) => new Response(null, { status: count === 1 ? 503 : 204 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'webhook' })], { now: () => (clock += 5000) }));
    notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(2);
    const [first, second] = calls;
    expect(first?.headers['x-vigil-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(second?.headers['x-vigil-delivery']).toBe(first?.headers['x-vigil-delivery']);
    expect(second?.headers['x-vigil-signature']).not.toBe(first?.headers['x-vigil-signature']);
    for (const call of calls) {
      expect(call.headers).toMatchObject({ 'content-type': 'application/json', 'x-vigil-event': 'opened' });
      expect(verifySignature(SECRET, call.headers['x-vigil-signature'], call.body, clock / 1000)).toEqual({ ok: true });
    }
    expect(notifier.stats()).toEqual({ queued: 0, sent: 1, retried: 1, failed: 0, deadLettered: 0 });
  });

  it('keeps order within a destination while another one retries', async () => {
    const order: string[] = [];
    const { fetchImpl } = scriptedFetch((url, count) => {
      if (url.endsWith('/slow') && count <= 2) return new Response('busy', { status: 429 });
      order.push(url);
      return new Response('ok');
    });
    const slow = destination({ type: 'pagerduty', name: 'slow', url: 'https://pd.example.com/slow' });
    const fast = destination({ type: 'slack', name: 'fast', url: 'https://slack.example.com/fast' });
    const notifier = createNotifier(base(fetchImpl, [slow, fast]));
    notifier.notify(change('opened'));
    notifier.notify(change('resolved', { status: 'resolved' }));
    expect(notifier.stats().queued).toBe(4);
    await notifier.drain();
    expect(order.filter((url) => url.endsWith('/fast'))).toHaveLength(2);
    // The fast destination is not held back by the slow one's retries.
    expect(order.slice(0, 2)).toEqual(['https://slack.example.com/fast', 'https://slack.example.com/fast']);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 4, retried: 2, failed: 0, deadLettered: 0 });
  });

  it('does not retry a 4xx other than 429, and dead-letters it to the log without a producer', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const { fetchImpl, calls } = scriptedFetch(() => new Response('{"status":"invalid event"}', { status: 400 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'pagerduty', routingKey: 'rk-very-secret' })], { logger }));
    notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(1);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 0, retried: 0, failed: 1, deadLettered: 1 });
    const line = JSON.parse(lines.find((entry) => entry.includes('deadLetter')) ?? '{}') as { deadLetter?: Record<string, unknown> };
    expect(line.deadLetter).toMatchObject({
      destination: 'd-pagerduty',
      kind: 'opened',
      alertId: 'al-7f3a',
      error: 'HTTP 400: {"status":"invalid event"}',
      attempts: 1,
      payload: { routing_key: '[redacted]', event_action: 'trigger', dedup_key: 'al-7f3a' },
    });
    expect(lines.join()).not.toContain('rk-very-secret');
  });

  it('logs each retry with the error as `err` (type and stack kept), and names its component once', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const { fetchImpl } = scriptedFetch((_url, count) => new Response('busy', { status: count === 1 ? 503 : 200 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack' })], { logger }));
    notifier.notify(change('opened'));
    await notifier.drain();
    const line = lines.find((entry) => entry.includes('retrying')) ?? '{}';
    expect(JSON.parse(line)).toMatchObject({ component: 'notifier', retry: 1, err: { type: 'NotificationError', message: 'HTTP 503: busy', code: 'notification_rejected', stack: expect.any(String) as unknown } });
    expect(line.match(/"component"/g)).toHaveLength(1);
  });

  it('retries network errors and timeouts, then gives up after `retries`', async () => {
    const { fetchImpl, calls } = scriptedFetch((_url, count) => {
      if (count % 2 === 1) throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    });
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack' })], { retries: 3 }));
    notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(4);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 0, retried: 3, failed: 1, deadLettered: 1 });
  });

  it('keeps retrying an unreachable destination for retryForMs past `retries`, then dead-letters; a 4xx stays final', async () => {
    let clock = 0;
    // Each attempt takes 4 s of the notifier's clock.
    const down = scriptedFetch(() => {
      clock += 4000;
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
    });
    const gaveUp = createNotifier(base(down.fetchImpl, [destination({ type: 'webhook' })], { retries: 1, retryForMs: 10_000, now: () => clock }));
    gaveUp.notify(change('opened'));
    await gaveUp.drain();
    // 4 s and 8 s after the first attempt are within the 10 s; at 12 s it gives up.
    expect(down.calls).toHaveLength(3);
    expect(gaveUp.stats()).toMatchObject({ sent: 0, retried: 2, failed: 1, deadLettered: 1 });

    const back = scriptedFetch((_url, count) => {
      clock += 4000;
      if (count <= 8) throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
      return new Response('ok');
    });
    const delivered = createNotifier(base(back.fetchImpl, [destination({ type: 'webhook' })], { retries: 1, retryForMs: 60_000, now: () => clock }));
    delivered.notify(change('opened'));
    await delivered.drain();
    expect(back.calls).toHaveLength(9);
    expect(new Set(back.calls.map((call) => call.headers['x-vigil-delivery'])).size).toBe(1);
    expect(delivered.stats()).toMatchObject({ sent: 1, retried: 8, failed: 0 });

    const refused = scriptedFetch(() => new Response('no', { status: 400 }));
    const final = createNotifier(base(refused.fetchImpl, [destination({ type: 'webhook' })], { retries: 1, retryForMs: 60_000, now: () => clock }));
    final.notify(change('opened'));
    await final.drain();
    expect(refused.calls).toHaveLength(1);
  });

  // A receiver asking for 2 minutes got attempts every 30 s (the backoff's cap).
  it("honours Retry-After beyond the backoff's cap, within the time the delivery may still be retried", async () => {
    const timed = async (retryForMs: number): Promise<number> => {
      const { fetchImpl } = scriptedFetch((_url, count) => (count === 1 ? new Response(null, { status: 429, headers: { 'retry-after': '1' } }) : new Response(null, { status: 200 })));
      const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack' })], { maxDelayMs: 150, retryForMs }));
      const started = Date.now();
      notifier.notify(change('opened'));
      await notifier.drain();
      expect(notifier.stats().sent).toBe(1);
      return Date.now() - started;
    };
    // The window (60 s) holds the whole second asked for.
    expect(await timed(60_000)).toBeGreaterThanOrEqual(980);
    // A window of 400 ms: waited to its end, not for the whole second.
    const cut = await timed(400);
    expect(cut).toBeGreaterThanOrEqual(380);
    expect(cut).toBeLessThan(950);
  });

  it('treats a redirect as final (it does not follow it)', async () => {
    const { fetchImpl, calls } = scriptedFetch(() => new Response(null, { status: 302, headers: { location: 'http://169.254.169.254/' } }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack' })]));
    notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(1);
    expect(notifier.stats()).toMatchObject({ failed: 1, deadLettered: 1 });
  });

  it('says where a redirect points (its origin only), retries a 408, and keeps a URL quoted by a network error to its origin', async () => {
    const once = (answer: () => Response | Promise<Response>): Promise<NotificationError> =>
      postOnce(scriptedFetch(answer).fetchImpl, destination({ type: 'slack' }), { headers: {}, body: '{}' }, Date.now).then(
        () => {
          throw new Error('expected a refusal');
        },
        (error: unknown) => error as NotificationError,
      );
    const moved = await once(() => new Response(null, { status: 301, headers: { location: 'https://new.example.com/hook?token=sk-secret' } }));
    expect([moved.message, moved.retriable]).toEqual(["HTTP 301: a redirect to https://new.example.com, not followed: set the destination's url to where it points", false]);
    expect((await once(() => new Response('timeout', { status: 408 }))).retriable).toBe(true);
    const refused = await once(() => Promise.reject(new TypeError('fetch failed', { cause: new Error('cannot reach https://user:pw@hooks.example.com/services/T0/B0/tok?x=1 now') })));
    expect(refused.message).toBe('request failed: cannot reach https://hooks.example.com now');
  });

  // A receiver quoting the request back put a Slack token into the retry log and the dead letter.
  it("cuts the destination's token out of a receiver's answer that quotes it", async () => {
    const refusal = async (target: Destination, body: string): Promise<string> =>
      postOnce(scriptedFetch(() => new Response(body, { status: 400 })).fetchImpl, target, { headers: {}, body: '{}' }, Date.now).then(
        () => 'sent',
        (error: unknown) => (error as NotificationError).message,
      );
    const slack = destination({ type: 'slack', url: 'https://hooks.slack.example.com/services/T0AAAA/B0BBBB/XOXBSECRETTOKEN123456' });
    expect(await refusal(slack, 'Cannot POST /services/T0AAAA/B0BBBB/XOXBSECRETTOKEN123456')).toBe('HTTP 400: Cannot POST <redacted>');
    expect(await refusal(slack, 'invalid_token: XOXBSECRETTOKEN123456')).toBe('HTTP 400: invalid_token: <redacted>');
    const hook = destination({ type: 'webhook', url: 'https://hooks.example.com/hook?token=XOXBSECRETTOKEN123456' });
    expect(await refusal(hook, `bad request to /hook?token=XOXBSECRETTOKEN123456, signature key ${SECRET}`)).toBe('HTTP 400: bad request to /hook?token=<redacted>, signature key <redacted>');
    // A token crossing the 300-character cut is redacted whole before the clip, not half shown.
    const crossing = await refusal(slack, `${'x'.repeat(290)} XOXBSECRETTOKEN123456`);
    expect(crossing).not.toContain('XOXB');
    expect(crossing.startsWith(`HTTP 400: ${'x'.repeat(290)} <redac`)).toBe(true);
    const pager = destination({ type: 'pagerduty', routingKey: 'R0UT1NGKEY0000000000000000000000' });
    expect(await refusal(pager, '{"status":"invalid event","message":"routing_key R0UT1NGKEY0000000000000000000000 unknown"}')).toBe(
      'HTTP 400: {"status":"invalid event","message":"routing_key <redacted> unknown"}',
    );
  });

  it("gives the logger a destination URL's path, long segments and query values as secrets, not the URL alone", () => {
    const destinations = JSON.stringify([{ type: 'webhook', name: 'hook', url: 'https://hooks.example.com/in/XOXBSECRETTOKEN123456?key=querysecret1', secret: SECRET }]);
    const secrets = secretsOf(loadConfig({ VIGIL_ALERT_DESTINATIONS: destinations }));
    expect(secrets).toEqual(expect.arrayContaining(['https://hooks.example.com/in/XOXBSECRETTOKEN123456?key=querysecret1', '/in/XOXBSECRETTOKEN123456', 'XOXBSECRETTOKEN123456', 'querysecret1', SECRET]));
    // A path with no token-length segment is no secret: blanked, it would go from every log line.
    expect(urlSecrets('https://events.pagerduty.com/v2/enqueue?source=vigil')).toEqual([]);
  });

  it('puts the alert link it is given into Slack and PagerDuty bodies, not into the webhook', async () => {
    const { fetchImpl, calls } = scriptedFetch(() => new Response(null, { status: 200 }));
    const notifier = createNotifier(
      base(fetchImpl, [destination({ type: 'slack' }), destination({ type: 'pagerduty' }), destination({ type: 'webhook' })], { alertLink: (target) => `https://kibana.example.com/alert/${target.id}` }),
    );
    notifier.notify(change('opened'));
    await notifier.drain();
    const linked = (body: string): boolean => body.includes('https://kibana.example.com/alert/al-7f3a');
    expect(calls).toHaveLength(3);
    expect(calls.filter((call) => call.body.includes('"blocks"') || call.body.includes('"routing_key"')).map((call) => linked(call.body))).toEqual([true, true]);
    expect(calls.filter((call) => call.body.includes('"type":"vigil.alert.opened"')).map((call) => linked(call.body))).toEqual([false]);
  });

  it('sends the alert as it was at notify time', async () => {
    const { fetchImpl, calls } = scriptedFetch(() => new Response(null, { status: 200 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'webhook' })]));
    const opened = change('opened');
    notifier.notify(opened);
    opened.alert.count = 99;
    await notifier.drain();
    expect((JSON.parse(calls[0]?.body ?? '{}') as { alert: Alert }).alert.count).toBe(12);
  });

  it('never throws from notify, and dead-letters beyond the queue bound', async () => {
    const { fetchImpl, calls } = scriptedFetch(() => new Response(null, { status: 200 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack' })], { maxQueuedPerDestination: 2 }));
    expect(() => notifier.notify(null as unknown as AlertChange)).not.toThrow();
    expect(() => notifier.notify({ kind: 'opened' } as unknown as AlertChange)).not.toThrow();
    for (let index = 0; index < 3; index++) notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(2);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 2, retried: 0, failed: 1, deadLettered: 1 });
  });

  it('sends nothing for a change no destination takes', async () => {
    const { fetchImpl, calls } = scriptedFetch(() => new Response(null, { status: 200 }));
    const notifier = createNotifier(base(fetchImpl, [destination({ type: 'slack', minSeverity: 'critical' })]));
    notifier.notify(change('opened'));
    await notifier.drain();
    expect(calls).toHaveLength(0);
    expect(notifier.stats()).toEqual({ queued: 0, sent: 0, retried: 0, failed: 0, deadLettered: 0 });
  });
});
