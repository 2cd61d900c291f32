import { z } from 'zod';
import { ALERT_CHANGES, SEVERITIES, type AlertChange } from '../../schemas';
import { ValidationError } from '../../platform';
import { SEVERITY_RANK } from './grouping-policy';
import { DEFAULT_GROUPING } from './notify/grouping';

/** The kinds of destination the notifier can deliver to. */
export const DESTINATION_TYPES = ['webhook', 'slack', 'pagerduty'] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

/**
 * Fields every destination has. Strict objects: a misspelt key (`minSeverty`) is an error at
 * start, not a destination that silently pages for everything.
 */
const shared = {
  /** Unique among destinations; names the destination in logs, stats and dead letters. */
  name: z.string().regex(/^[a-zA-Z0-9._-]{1,100}$/, 'letters, digits, ".", "_" and "-" only (1 to 100)'),
  /**
   * Where to POST. Slack and PagerDuty URLs may carry a token, so the notifier never logs a URL,
   * only the destination name.
   */
  url: z
    .url({ protocol: /^https?$/, error: 'expected an http or https URL' })
    // fetch refuses such a URL on every attempt: it would never deliver, and its password would
    // travel in the error of every dead letter.
    .refine((url) => {
      const parsed = new URL(url);
      return parsed.username === '' && parsed.password === '';
    }, 'must not hold a user name or password (user:password@host): fetch refuses such a URL; put a token in the path or query, or use a webhook secret'),
  /** The least severity sent here. @defaultValue 'low' */
  minSeverity: z.enum(SEVERITIES).default('low'),
  /** When set, only alerts with at least one of these tags are sent here. */
  tags: z.array(z.string().min(1)).min(1, 'at least one tag, or leave `tags` out').optional(),
  /** The alert changes sent here. @defaultValue all of {@link ALERT_CHANGES} */
  events: z
    .array(z.enum(ALERT_CHANGES))
    .min(1, 'at least one change kind, or leave `events` out')
    .default(() => [...ALERT_CHANGES]),
  /** Time allowed for one attempt, response body included. @defaultValue 5000 */
  timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  /**
   * Grouping (docs/alerting.md#notification-grouping): how long an incident's first notification
   * waits for more changes to go with it (Alertmanager's group_wait). @defaultValue 30000
   */
  groupWaitMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_GROUPING.groupWaitMs),
  /** Least time between two notifications of one incident, `resolved` aside (group_interval). @defaultValue 300000 */
  groupIntervalMs: z.number().int().min(0).max(86_400_000).default(DEFAULT_GROUPING.groupIntervalMs),
  /** How long after its last notification a still-open incident is sent again (repeat_interval); 0: never. @defaultValue 14400000 (4 h) */
  repeatIntervalMs: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400_000)
    .refine((value) => value === 0 || value >= 60_000, 'at least 60000 (1 minute), or 0 for never')
    .default(DEFAULT_GROUPING.repeatIntervalMs),
};

/**
 * One destination of alert notifications, as configured in `VIGIL_ALERT_DESTINATIONS` (a JSON
 * array). Discriminated on `type`:
 * - `webhook`: a signed JSON POST (see `signPayload`); `secret` is the HMAC key, at least 16 characters.
 * - `slack`: a Slack incoming-webhook URL.
 * - `pagerduty`: the Events API v2 endpoint and an integration `routingKey`.
 */
export const destinationSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('webhook'), ...shared, secret: z.string().min(16) }),
  z.strictObject({ type: z.literal('slack'), ...shared }),
  z.strictObject({ type: z.literal('pagerduty'), ...shared, routingKey: z.string().min(1) }),
]);

/** A validated destination, defaults applied. */
export type Destination = z.output<typeof destinationSchema>;
/** A destination as written in configuration, before defaults. */
export type DestinationInput = z.input<typeof destinationSchema>;

function at(index: number, path: readonly PropertyKey[]): string {
  return `destinations[${index}]${path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('')}`;
}

/**
 * Parses and validates the destinations list (`config.alerting.destinations`).
 *
 * Every problem is reported, each as `destinations[<index>].<field>: <message>`. Messages never
 * quote the input, because the input holds secrets (webhook secrets, routing keys, Slack tokens).
 * @throws ValidationError (code `destinations_invalid`) when the text is not JSON, not an array,
 * an entry is invalid, or two entries share a name.
 */
export function parseDestinations(json: string): Destination[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    // JSON.parse's message quotes the text, and the text holds secrets: say where, not what.
    throw new ValidationError('invalid alert destinations', ['destinations: not valid JSON'], 'destinations_invalid');
  }
  if (!Array.isArray(raw)) {
    throw new ValidationError('invalid alert destinations', ['destinations: expected a JSON array of destinations'], 'destinations_invalid');
  }
  const issues: string[] = [];
  const destinations: Destination[] = [];
  const firstIndexOf = new Map<string, number>();
  raw.forEach((entry: unknown, index) => {
    const parsed = destinationSchema.safeParse(entry);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) issues.push(`${at(index, issue.path)}: ${issue.message}`);
      return;
    }
    const earlier = firstIndexOf.get(parsed.data.name);
    if (earlier !== undefined) {
      issues.push(`${at(index, ['name'])}: "${parsed.data.name}" is already the name of destinations[${earlier}]`);
      return;
    }
    firstIndexOf.set(parsed.data.name, index);
    destinations.push(parsed.data);
  });
  if (issues.length > 0) throw new ValidationError('invalid alert destinations', issues, 'destinations_invalid');
  return destinations;
}

/**
 * Whether a destination takes a change: the change kind is one of its `events`, the alert is at
 * least its `minSeverity`, and, when it lists `tags`, the alert has one of them.
 */
export function destinationAccepts(destination: Destination, change: AlertChange): boolean {
  if (!destination.events.includes(change.kind)) return false;
  if (SEVERITY_RANK[change.alert.severity] < SEVERITY_RANK[destination.minSeverity]) return false;
  if (destination.tags === undefined) return true;
  return destination.tags.some((tag) => change.alert.tags.includes(tag));
}

/**
 * The destinations a change goes to, in configuration order. Only the configured list decides:
 * nothing in the alert (which is built from event data) can add a destination or change a URL.
 */
export function routesFor(destinations: readonly Destination[], change: AlertChange): Destination[] {
  return destinations.filter((destination) => destinationAccepts(destination, change));
}

/**
 * The destinations whose grouping state a change concerns: those it goes to and, for a
 * `resolved`, those that take the incident's other changes but leave resolves out. Their state
 * must end too (nothing is sent), or the incident would be sent again every repeat interval.
 */
export function groupingRoutesFor(destinations: readonly Destination[], change: AlertChange): Destination[] {
  if (change.kind !== 'resolved') return routesFor(destinations, change);
  return destinations.filter((destination) => destinationAccepts(destination.events.includes('resolved') ? destination : { ...destination, events: [...destination.events, 'resolved'] }, change));
}
