import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import type { Alert, AlertChange, AlertChangeKind, Severity } from '../../schemas';
import { VigilError, createLogger, errorMessage, retry, sleep, type Logger } from '../../platform';
import { routesFor, type Destination } from './destinations';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signPayload } from './signature';

// --- formatters: pure functions of the change ----------------------------------------------------

/** The JSON body of a webhook notification. */
export interface WebhookBody {
  type: `vigil.alert.${AlertChangeKind}`;
  /** Stable across retries of one delivery: receivers deduplicate on it (also in `X-Vigil-Delivery`). */
  deliveryId: string;
  /** When this attempt was sent (ISO 8601). */
  sentAt: string;
  alert: Alert;
}

/** The webhook body for a change. */
export function formatWebhook(change: AlertChange, delivery: { deliveryId: string; sentAt: string }): WebhookBody {
  return { type: `vigil.alert.${change.kind}`, deliveryId: delivery.deliveryId, sentAt: delivery.sentAt, alert: change.alert };
}

/** A Slack text object. */
export interface SlackText {
  type: 'mrkdwn';
  text: string;
}

/** The Block Kit blocks the Slack formatter uses. */
export type SlackBlock =
  | { type: 'section'; text: SlackText }
  | { type: 'section'; fields: SlackText[] }
  | { type: 'context'; elements: SlackText[] };

/** A Slack incoming-webhook message. */
export interface SlackMessage {
  /** The one-liner: shown in notifications and by clients that don't render blocks. */
  text: string;
  blocks: SlackBlock[];
}

// Slack's limits: a section's text 3000 characters, a field 2000, at most 10 fields.
const SLACK_SECTION_MAX = 3000;
const SLACK_FIELD_MAX = 2000;
const SLACK_TITLE_MAX = 300;
const SLACK_RULES_SHOWN = 10;

/** Cuts to `max` characters (code points, so no surrogate pair is split), marking the cut with `…`. */
function clip(text: string, max: number): string {
  const characters = Array.from(text);
  return characters.length <= max ? text : `${characters.slice(0, max - 1).join('')}…`;
}

/**
 * Escapes what Slack parses in text. Titles, reasons and keys come from event data, so without
 * this an attacker could put `<!channel>` or a disguised link `<https://evil|login>` in a page.
 */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes, then clips without leaving half an entity behind. */
function slackText(text: string, max: number): string {
  const escaped = slackEscape(text);
  if (escaped.length <= max) return escaped;
  return `${escaped.slice(0, max - 1).replace(/&[a-z]*$/, '')}…`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The one-line summary: severity, title, count, status. Unescaped. */
function headline(change: AlertChange): string {
  const { alert } = change;
  return `[${alert.severity.toUpperCase()}] ${clip(alert.title, SLACK_TITLE_MAX)} | ${plural(alert.count, 'detection')} | ${change.kind}`;
}

/**
 * The Slack incoming-webhook message for a change: `text` is the one-liner (severity, title,
 * count, status); the blocks hold the reason, the rules, first and last seen, and the alert id.
 * Everything from the alert is escaped for Slack and cut to Slack's limits.
 */
export function formatSlack(change: AlertChange): SlackMessage {
  const { alert } = change;
  const text = slackEscape(headline(change));
  const rules = alert.rules.slice(0, SLACK_RULES_SHOWN).map((ruleId, index) => {
    const name = alert.ruleNames[index];
    return name === undefined || name === ruleId ? ruleId : `${name} (${ruleId})`;
  });
  if (alert.rules.length > SLACK_RULES_SHOWN) rules.push(`and ${alert.rules.length - SLACK_RULES_SHOWN} more`);
  const fields: SlackText[] = [
    { type: 'mrkdwn', text: `*Rules*\n${slackText(rules.join('\n'), SLACK_FIELD_MAX - 10)}` },
    { type: 'mrkdwn', text: `*Severity*\n${alert.severity}` },
    { type: 'mrkdwn', text: `*First seen*\n${slackText(alert.firstSeen, 100)}` },
    { type: 'mrkdwn', text: `*Last seen*\n${slackText(alert.lastSeen, 100)}` },
  ];
  if (alert.resolvedAt !== undefined) fields.push({ type: 'mrkdwn', text: `*Resolved*\n${slackText(alert.resolvedAt, 100)}` });
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${slackText(headline(change), SLACK_SECTION_MAX - 2)}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: `*Reason*\n${slackText(alert.reason, SLACK_SECTION_MAX - 12)}` } },
      { type: 'section', fields },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `Alert id: ${slackText(alert.id, 200)}` }] },
    ],
  };
}

/** PagerDuty's severities. */
export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** Vigil severity to PagerDuty severity. */
export const PAGERDUTY_SEVERITY: Record<Severity, PagerDutySeverity> = { critical: 'critical', high: 'error', medium: 'warning', low: 'info' };

/** A PagerDuty Events API v2 trigger (an alert opened or escalated). */
export interface PagerDutyTrigger {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    summary: string;
    source: 'vigil';
    severity: PagerDutySeverity;
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
}

/** A PagerDuty Events API v2 resolve: nothing but the key of the incident. */
export interface PagerDutyResolve {
  routing_key: string;
  event_action: 'resolve';
  dedup_key: string;
}

/** A PagerDuty Events API v2 event. */
export type PagerDutyEvent = PagerDutyTrigger | PagerDutyResolve;

const PAGERDUTY_SUMMARY_MAX = 1024;

/**
 * The PagerDuty Events API v2 event for a change. `dedup_key` is the alert id, so an escalation
 * updates the incident the opening created and the resolve closes it. `component` is what the
 * alert groups on, `group` its tags, `class` its first rule.
 */
export function formatPagerDuty(change: AlertChange, routingKey: string): PagerDutyEvent {
  const { alert } = change;
  if (change.kind === 'resolved') return { routing_key: routingKey, event_action: 'resolve', dedup_key: alert.id };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: alert.id,
    payload: {
      summary: clip(`[${alert.severity.toUpperCase()}] ${alert.title}: ${alert.reason}`, PAGERDUTY_SUMMARY_MAX),
      source: 'vigil',
      severity: PAGERDUTY_SEVERITY[alert.severity],
      timestamp: alert.lastSeen,
      component: alert.groupKey,
      group: alert.tags.length > 0 ? alert.tags.join(',') : 'vigil',
      class: alert.rules[0] ?? 'unknown',
      custom_details: {
        change: change.kind,
        alertId: alert.id,
        title: alert.title,
        reason: alert.reason,
        count: alert.count,
        suppressed: alert.suppressed,
        key: alert.key,
        rules: alert.rules,
        ruleNames: alert.ruleNames,
        tags: alert.tags,
        firstSeen: alert.firstSeen,
        lastSeen: alert.lastSeen,
        detections: alert.detections,
        revision: alert.revision,
      },
    },
  };
}

// --- delivery --------------------------------------------------------------------------------------

/** One failed attempt to deliver a notification; `retriable` says whether another attempt may help. */
export class NotificationError extends VigilError {
  /** The HTTP status, when the destination answered. */
  readonly status?: number;
  /** What the destination asked for in `Retry-After`, in ms. */
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    options: { code: 'notification_timeout' | 'notification_network' | 'notification_rejected'; retriable: boolean; status?: number; retryAfterMs?: number; cause?: unknown },
  ) {
    super(message, { code: options.code, retriable: options.retriable, cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** The value of a message on the notification dead-letter topic (keyed by the alert id). */
export interface NotificationDeadLetter {
  /** The destination's name (never its URL, which may hold a token). */
  destination: string;
  kind: AlertChangeKind;
  alertId: string;
  /** The last error, e.g. `HTTP 400: invalid event`. */
  error: string;
  /** Attempts made; 0 when the delivery never started (its queue was full). */
  attempts: number;
  /** The body of the last attempt, parsed; a PagerDuty `routing_key` is replaced by `[redacted]`. */
  payload: unknown;
}

/** Counters of a notifier. */
export interface NotifierStats {
  /** Deliveries waiting or in flight now (a gauge: 0 after {@link Notifier.drain}). */
  queued: number;
  /** Deliveries the destination accepted (2xx). */
  sent: number;
  /** Retries, over all deliveries (a delivery that succeeded on its 4th attempt adds 3). */
  retried: number;
  /** Deliveries given up: retries exhausted, a status not worth retrying, or a full queue. */
  failed: number;
  /** Dead-letter records written: to the topic, or to the log when there is no producer. */
  deadLettered: number;
}

/** Options of {@link createNotifier}. */
export interface NotifierOptions {
  /** Where notifications go, from {@link parseDestinations}. Only these: never anything from event data. */
  destinations: readonly Destination[];
  /** A connected kafkajs producer for the dead-letter topic; without one, dead letters go to the log. */
  producer?: Producer;
  /** The dead-letter topic, `config.alerting.notificationDeadLetterTopic`. */
  deadLetterTopic: string;
  /** @defaultValue a silent logger */
  logger?: Logger;
  /** Attempts after the first. @defaultValue 5 */
  retries?: number;
  /** Delay before the first retry, before jitter. @defaultValue 500 */
  initialDelayMs?: number;
  /** Upper bound of one delay, `Retry-After` included. @defaultValue 30000 */
  maxDelayMs?: number;
  /** Deliveries one destination may hold waiting; beyond that they are dead-lettered at once. @defaultValue 1000 */
  maxQueuedPerDestination?: number;
  /** The clock, in ms since the epoch (`sentAt`, signature timestamps). @defaultValue Date.now */
  now?: () => number;
  /** @defaultValue the global fetch */
  fetchImpl?: typeof fetch;
}

/** Sends alert changes to their destinations. */
export interface Notifier {
  /** Queues one delivery per destination the change routes to. Never throws, never waits. */
  notify(change: AlertChange): void;
  /** Resolves when every queued delivery has been sent or dead-lettered, including ones queued meanwhile. */
  drain(): Promise<void>;
  /** A copy of the counters. */
  stats(): NotifierStats;
}

interface Request {
  body: string;
  headers: Record<string, string>;
}

interface Delivery {
  destination: Destination;
  change: AlertChange;
  deliveryId: string;
  /** Rendered per attempt: a webhook is signed (and stamped) at send time. */
  render(nowMs: number): Request;
}

interface Lane {
  tail: Promise<void>;
  waiting: number;
}

const SNIPPET_MAX = 300;

/** Reads at most a few hundred bytes of a response for the error message, and releases the connection. */
async function readSnippet(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_MAX) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut off or timed out: the status says enough.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return clip(Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim(), SNIPPET_MAX);
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined. */
function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function render(destination: Destination, change: AlertChange, deliveryId: string): (nowMs: number) => Request {
  const base = { 'content-type': 'application/json', 'user-agent': 'vigil-notifier', [DELIVERY_HEADER]: deliveryId, [EVENT_HEADER]: change.kind };
  switch (destination.type) {
    case 'webhook': {
      const { secret } = destination;
      return (nowMs) => {
        const body = JSON.stringify(formatWebhook(change, { deliveryId, sentAt: new Date(nowMs).toISOString() }));
        return { body, headers: { ...base, [SIGNATURE_HEADER]: signPayload(secret, body, Math.floor(nowMs / 1000)) } };
      };
    }
    case 'slack': {
      const body = JSON.stringify(formatSlack(change));
      return () => ({ body, headers: { 'content-type': 'application/json', 'user-agent': 'vigil-notifier' } });
    }
    case 'pagerduty': {
      const body = JSON.stringify(formatPagerDuty(change, destination.routingKey));
      return () => ({ body, headers: { 'content-type': 'application/json', 'user-agent': 'vigil-notifier' } });
    }
  }
}

/** The payload as it goes on the dead-letter topic: parsed, secrets out. */
function deadLetterPayload(body: string | undefined): unknown {
  if (body === undefined) return null;
  const payload = JSON.parse(body) as unknown;
  if (typeof payload === 'object' && payload !== null && 'routing_key' in payload) return { ...payload, routing_key: '[redacted]' };
  return payload;
}

/**
 * Creates a notifier: it sends each alert change to the destinations it routes to, as a signed
 * webhook, a Slack message or a PagerDuty event.
 *
 * Deliveries to different destinations run concurrently; deliveries to one destination run one
 * at a time, in `notify` order, so a destination never sees a `resolved` before its `opened`
 * (a destination retrying holds back its own queue, no other). An attempt that fails with a
 * network error, a timeout (`timeoutMs` of the destination), 429 or 5xx is retried with the
 * platform's `retry` (exponential backoff with jitter, at least `Retry-After` when the destination
 * sends one, capped at `maxDelayMs`). Any other answer but 2xx (3xx included: redirects are not
 * followed) is final. A delivery that fails for good is written to the dead-letter topic, keyed by
 * the alert id, as a {@link NotificationDeadLetter}.
 *
 * Every notification carries a delivery id (`X-Vigil-Delivery`) kept across retries: delivery is
 * at-least-once (a timeout may hide a success), so receivers deduplicate on it.
 */
export function createNotifier(options: NotifierOptions): Notifier {
  const log = (options.logger ?? createLogger({ level: 'silent' })).child({ component: 'notifier' });
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  const retries = options.retries ?? 5;
  const initialDelayMs = options.initialDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const maxQueued = options.maxQueuedPerDestination ?? 1000;
  const destinations = [...options.destinations];
  const counters: NotifierStats = { queued: 0, sent: 0, retried: 0, failed: 0, deadLettered: 0 };
  const lanes = new Map<string, Lane>();
  /** Dead letters written outside a lane (a full queue), awaited by drain. */
  const outside = new Set<Promise<void>>();

  async function attempt(delivery: Delivery, request: Request): Promise<void> {
    const { destination } = delivery;
    let response: Response;
    try {
      response = await fetchImpl(destination.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(destination.timeoutMs),
      });
    } catch (error) {
      if (error instanceof Error && error.name === 'TimeoutError') {
        throw new NotificationError(`no answer within ${destination.timeoutMs} ms`, { code: 'notification_timeout', retriable: true, cause: error });
      }
      // fetch reports a refused or reset connection as TypeError('fetch failed') with the reason in `cause`.
      const reason = error instanceof Error && error.cause !== undefined ? errorMessage(error.cause) : errorMessage(error);
      throw new NotificationError(`request failed: ${reason}`, { code: 'notification_network', retriable: true, cause: error });
    }
    if (response.ok) {
      await response.body?.cancel().catch(() => undefined);
      return;
    }
    const snippet = await readSnippet(response);
    const status = response.status;
    const wait = retryAfterMs(response.headers.get('retry-after'), now());
    throw new NotificationError(`HTTP ${status}${snippet === '' ? '' : `: ${snippet}`}`, {
      code: 'notification_rejected',
      retriable: status === 429 || status >= 500,
      status,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    });
  }

  async function deadLetter(delivery: Delivery, error: unknown, attempts: number, body: string | undefined): Promise<void> {
    const { destination, change } = delivery;
    counters.failed += 1;
    const record: NotificationDeadLetter = {
      destination: destination.name,
      kind: change.kind,
      alertId: change.alert.id,
      error: errorMessage(error),
      attempts,
      payload: deadLetterPayload(body),
    };
    const context = { destination: destination.name, alertId: change.alert.id, kind: change.kind, deliveryId: delivery.deliveryId, attempts };
    if (options.producer === undefined) {
      counters.deadLettered += 1;
      log.error({ ...context, deadLetter: record }, 'notification failed; no dead-letter producer, so the dead letter is this log line');
      return;
    }
    try {
      await options.producer.send({ topic: options.deadLetterTopic, messages: [{ key: change.alert.id, value: JSON.stringify(record) }] });
      counters.deadLettered += 1;
      log.warn({ ...context, error: record.error, topic: options.deadLetterTopic }, 'notification failed; dead-lettered');
    } catch (sendError) {
      // The last place the notification exists: log all of it.
      log.error({ ...context, err: sendError, deadLetter: record }, 'notification failed and the dead-letter write failed too');
    }
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const { destination, change } = delivery;
    let attempts = 0;
    let body: string | undefined;
    try {
      await retry(
        async (number) => {
          attempts = number + 1;
          const request = delivery.render(now());
          body = request.body;
          await attempt(delivery, request);
        },
        {
          retries,
          initialDelayMs,
          maxDelayMs,
          onRetry: async (error, retryNumber, delayMs) => {
            counters.retried += 1;
            log.warn(
              { destination: destination.name, alertId: change.alert.id, kind: change.kind, retry: retryNumber, delayMs, error: errorMessage(error) },
              'notification attempt failed; retrying',
            );
            const asked = error instanceof NotificationError ? error.retryAfterMs : undefined;
            if (asked !== undefined && asked > delayMs) await sleep(Math.min(asked, maxDelayMs) - delayMs);
          },
        },
      );
      counters.sent += 1;
      log.debug({ destination: destination.name, alertId: change.alert.id, kind: change.kind, attempts }, 'notification sent');
    } catch (error) {
      await deadLetter(delivery, error, attempts, body);
    }
  }

  function enqueue(destination: Destination, change: AlertChange): void {
    const deliveryId = randomUUID();
    const delivery: Delivery = { destination, change, deliveryId, render: render(destination, change, deliveryId) };
    let lane = lanes.get(destination.name);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), waiting: 0 };
      lanes.set(destination.name, lane);
    }
    if (lane.waiting >= maxQueued) {
      const error = new Error(`the queue of destination ${destination.name} is full (${maxQueued} deliveries)`);
      const written = deadLetter(delivery, error, 0, delivery.render(now()).body).finally(() => outside.delete(written));
      outside.add(written);
      return;
    }
    const current = lane;
    current.waiting += 1;
    counters.queued += 1;
    current.tail = current.tail
      .then(() => deliver(delivery))
      .catch((error: unknown) => log.error({ err: error, destination: destination.name }, 'notifier lane failed'))
      .finally(() => {
        current.waiting -= 1;
        counters.queued -= 1;
      });
  }

  return {
    notify(change) {
      try {
        // A snapshot: the alerter may go on updating its alert object while this one waits.
        const snapshot = structuredClone(change);
        for (const destination of routesFor(destinations, snapshot)) enqueue(destination, snapshot);
      } catch (error) {
        log.error({ err: error, alertId: change?.alert?.id }, 'could not queue a notification');
      }
    },
    async drain() {
      while (counters.queued > 0 || outside.size > 0) {
        await Promise.all([...[...lanes.values()].map((lane) => lane.tail), ...outside]);
      }
    },
    stats() {
      return { ...counters };
    },
  };
}
