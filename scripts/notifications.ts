/**
 * `vigil notifications missed`: what on-call never received. A notification that failed for good
 * (a destination down past `VIGIL_NOTIFIER_RETRY_FOR_MS`, a final HTTP answer) is written to the
 * notification dead-letter topic; after an outage of Slack or PagerDuty this lists, per alert,
 * which destinations missed which changes and why, with the alert's state now (from the alerts
 * index), still-open alerts first: the pages to look at by hand (docs/alerting.md).
 */
import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { VigilError, createElasticsearch, createKafka, createLogger, secretsOf, type Config, type Logger } from '../platform';
import { ALERT_CHANGES, alertIndexNames } from '../schemas';
import { DeadLetterUsageError, iso, parseTime, scanToEnd, type ScanOptions } from './deadletters';

/** The usage text of `vigil notifications`. */
export const NOTIFICATIONS_USAGE = `usage: vigil notifications missed [--from TIME --to TIME] [--destination NAME]

Lists the notifications that failed for good (the notification dead-letter topic,
VIGIL_TOPIC_NOTIFICATION_DEADLETTER), per alert: the destinations that missed which changes, the
last error, and the alert's state now, open alerts first.
  --from TIME --to TIME    dead-lettered in this range (ISO 8601, or now-N followed by s, m, h or d)
  --destination NAME       only this destination (repeatable)`;

/** A parsed `vigil notifications` command line. */
export interface NotificationsCommand {
  command: 'missed';
  from?: number;
  to?: number;
  destinations: string[];
}

/** Parses the words after `vigil notifications`; throws {@link DeadLetterUsageError} naming what is wrong. */
export function parseNotificationsArgs(args: readonly string[], now: Date = new Date()): NotificationsCommand {
  const [command, ...rest] = args;
  if (command !== 'missed') throw new DeadLetterUsageError(command === undefined ? 'a subcommand is needed: missed' : `unknown subcommand "${command}"; use missed`);
  const parsed: NotificationsCommand = { command, destinations: [] };
  for (let index = 0; index < rest.length; index++) {
    const option = rest[index] ?? '';
    if (option !== '--from' && option !== '--to' && option !== '--destination') {
      throw new DeadLetterUsageError(option.startsWith('-') ? `unknown option ${option} for notifications missed` : `unexpected argument "${option}" for notifications missed`);
    }
    const value = rest[index + 1];
    if (value === undefined || value.startsWith('--')) throw new DeadLetterUsageError(`${option} needs a value`);
    index++;
    if (option === '--destination') parsed.destinations.push(value);
    else parsed[option === '--from' ? 'from' : 'to'] = parseTime(option, value, now);
  }
  if (parsed.from !== undefined && parsed.to !== undefined && parsed.from > parsed.to) throw new DeadLetterUsageError('--from is after --to');
  return parsed;
}

/** A notification dead letter as the notifier writes it (`NotificationDeadLetter`), read leniently. */
const deadLetterSchema = z.looseObject({
  destination: z.string(),
  kind: z.enum(ALERT_CHANGES),
  alertId: z.string(),
  error: z.string(),
  attempts: z.number(),
});

/** One change one destination never got. */
export interface Missed {
  destination: string;
  kind: (typeof ALERT_CHANGES)[number];
  error: string;
  attempts: number;
  /** When it was dead-lettered (the message's time, ms). */
  time: number;
}

/** What the alerts index says of an alert now. */
export interface AlertState {
  status: string;
  severity: string;
  title: string;
}

/** The report: per alert, what it missed and its state now. */
export interface MissedReport {
  topic: string;
  /** Dead letters read and selected. */
  total: number;
  /** Messages that are not notification dead letters (counted, not shown). */
  unreadable: number;
  alerts: { alertId: string; state: AlertState | undefined; missed: Missed[] }[];
}

/** Groups the selected dead letters per alert, open alerts first, then the most recent miss first. */
export function summariseMissed(topic: string, entries: readonly ({ alertId: string } & Missed)[], states: ReadonlyMap<string, AlertState>, unreadable = 0): MissedReport {
  const byAlert = new Map<string, Missed[]>();
  for (const { alertId, ...missed } of entries) {
    const list = byAlert.get(alertId);
    if (list) list.push(missed);
    else byAlert.set(alertId, [missed]);
  }
  const latest = (missed: readonly Missed[]): number => Math.max(...missed.map((entry) => entry.time));
  const alerts = [...byAlert].map(([alertId, missed]) => ({ alertId, state: states.get(alertId), missed: [...missed].sort((a, b) => a.time - b.time) }));
  // Open first: a page that never arrived for an incident still going on is the one to act on.
  const rank = (state: AlertState | undefined): number => (state?.status === 'active' ? 0 : state === undefined ? 1 : 2);
  alerts.sort((a, b) => rank(a.state) - rank(b.state) || latest(b.missed) - latest(a.missed) || a.alertId.localeCompare(b.alertId));
  return { topic, total: entries.length, unreadable, alerts };
}

/** The lines `missed` prints. */
export function formatMissed(report: MissedReport): string[] {
  const lines = [`${report.topic}: ${report.total} notifications failed for good, for ${report.alerts.length} alerts${report.unreadable > 0 ? ` (${report.unreadable} messages not notification dead letters, left out)` : ''}`];
  for (const { alertId, state, missed } of report.alerts) {
    const status = state === undefined ? 'unknown (not in the alerts index)' : state.status === 'active' ? 'STILL OPEN' : state.status;
    lines.push(`  ${alertId}  ${status}${state ? `  ${state.severity}  ${state.title}` : ''}`);
    for (const entry of missed) lines.push(`    ${entry.destination}: ${entry.kind} at ${iso(entry.time)}, ${entry.attempts} attempts: ${entry.error}`);
  }
  return lines;
}

/** What `vigil notifications` works with; the clients are made from the configuration when not given. */
export interface NotificationsContext {
  config: Config;
  kafka?: Kafka;
  elasticsearch?: Client;
  logger?: Logger;
  out?: (line: string) => void;
  scan?: ScanOptions;
}

/** Reads the notification dead-letter topic and the alerts' states: the report `missed` prints. */
export async function readMissed(context: NotificationsContext, command: NotificationsCommand): Promise<MissedReport> {
  const { config } = context;
  const logger = context.logger ?? createLogger({ level: 'warn', secrets: secretsOf(config) });
  const kafka = context.kafka ?? createKafka(config, logger, `${config.kafka.clientId}-notifications`);
  const topic = config.alerting.notificationDeadLetterTopic;
  const entries: ({ alertId: string } & Missed)[] = [];
  let unreadable = 0;
  await scanToEnd(
    kafka,
    topic,
    (message) => {
      let parsed: z.infer<typeof deadLetterSchema>;
      try {
        parsed = deadLetterSchema.parse(JSON.parse(message.value?.toString('utf8') ?? ''));
      } catch {
        unreadable++;
        return;
      }
      const time = Number(message.timestamp);
      if (command.from !== undefined && !(time >= command.from)) return;
      if (command.to !== undefined && !(time <= command.to)) return;
      if (command.destinations.length > 0 && !command.destinations.includes(parsed.destination)) return;
      entries.push({ alertId: parsed.alertId, destination: parsed.destination, kind: parsed.kind, error: parsed.error, attempts: parsed.attempts, time });
    },
    context.scan ?? {},
    `the notification dead-letter topic "${topic}" does not exist: no notification failed yet, or VIGIL_TOPIC_NOTIFICATION_DEADLETTER names another topic`,
  );
  const states = await alertStates(context.elasticsearch ?? createElasticsearch(config), alertIndexNames(config.indices.prefix).index, [...new Set(entries.map((entry) => entry.alertId))]);
  return summariseMissed(topic, entries, states, unreadable);
}

const alertSourceSchema = z.looseObject({
  kibana: z.looseObject({ alert: z.looseObject({ status: z.string(), severity: z.string() }) }),
  vigil: z.looseObject({ alert: z.looseObject({ title: z.string() }) }),
});

/** The alerts' states now, by id (one mget); an alert the index does not hold is left out. */
async function alertStates(elasticsearch: Client, index: string, ids: readonly string[]): Promise<Map<string, AlertState>> {
  const states = new Map<string, AlertState>();
  if (ids.length === 0) return states;
  let response;
  try {
    response = await elasticsearch.mget({ index, ids: [...ids] });
  } catch (error) {
    throw new VigilError(`elasticsearch: could not read the alerts (${index}) to say which are still open: ${error instanceof Error ? error.message : String(error)}`, { code: 'store_unavailable', retriable: true, cause: error });
  }
  for (const doc of response.docs) {
    if (!('found' in doc) || !doc.found) continue;
    const parsed = alertSourceSchema.safeParse(doc._source);
    if (parsed.success) states.set(doc._id, { status: parsed.data.kibana.alert.status, severity: parsed.data.kibana.alert.severity, title: parsed.data.vigil.alert.title });
  }
  return states;
}

/** `vigil notifications ...`: returns the exit code (2 for a command line that does not parse). */
export async function runNotifications(args: readonly string[], contextOf: NotificationsContext | (() => NotificationsContext)): Promise<number> {
  if (args[0] === 'help' || args.some((arg) => arg === '--help' || arg === '-h')) {
    console.log(NOTIFICATIONS_USAGE);
    return 0;
  }
  let command: NotificationsCommand;
  try {
    command = parseNotificationsArgs(args);
  } catch (error) {
    if (!(error instanceof DeadLetterUsageError)) throw error;
    console.error(`vigil notifications: ${error.message}\n\n${NOTIFICATIONS_USAGE}`);
    return 2;
  }
  const context = typeof contextOf === 'function' ? contextOf() : contextOf;
  const out = context.out ?? ((line: string) => console.log(line));
  for (const line of formatMissed(await readMissed(context, command))) out(line);
  return 0;
}
