/**
 * `vigil notifications missed|resend`: what on-call never received. A notification that failed for
 * good (a destination down past `VIGIL_NOTIFIER_RETRY_FOR_MS`, a final HTTP answer) is written to
 * the notification dead-letter topic; after an outage of Slack or PagerDuty, `missed` lists, per
 * alert, which destinations missed which changes and why, with the alert's state now (from the
 * alerts index), still-open alerts first. `resend` sends each destination what it missed, built
 * from the alert as it is now, never the stale body of the failed attempt (docs/alerting.md).
 */
import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { createDeliveredLog, createNotifier, deliveryIdOf, fromAlertDocument, parseDestinations, routesFor, type Destination, type NotifierOptions } from '../detectors';
import { VigilError, createElasticsearch, createKafka, createLogger, createRedis, secretsOf, type Config, type Logger, type RedisClient } from '../platform';
import { ALERT_CHANGES, alertIndexNames, type Alert, type AlertChange, type AlertChangeKind } from '../schemas';
import { DeadLetterUsageError, iso, parseTime, scanToEnd, type ScanOptions } from './deadletters';

/** The usage text of `vigil notifications`. */
export const NOTIFICATIONS_USAGE = `usage: vigil notifications missed [--from TIME --to TIME] [--destination NAME]
       vigil notifications resend [--from TIME --to TIME] [--destination NAME] [--dry-run]

missed: lists the notifications that failed for good (the notification dead-letter topic,
VIGIL_TOPIC_NOTIFICATION_DEADLETTER), per alert: the destinations that missed which changes, the
last error, and the alert's state now, open alerts first.
resend: sends each destination what it missed, built from the alert as it is now: a still-open
alert as "opened" where its opening was missed, else as "escalated" (its current severity); a
resolved alert's "resolved" where only that was missed (the page it opened gets closed); nothing
about an incident that is over and was never announced there. Once per alert revision and
destination: run again, it sends nothing twice. Exits 1 when a send failed (dead-lettered again).
  --from TIME --to TIME    dead-lettered in this range (ISO 8601, or now-N followed by s, m, h or d)
  --destination NAME       only this destination (repeatable)
  --dry-run                (resend) say what would be sent, send nothing`;

/** A parsed `vigil notifications` command line. */
export interface NotificationsCommand {
  command: 'missed' | 'resend';
  from?: number;
  to?: number;
  destinations: string[];
  /** resend: say what would be sent, send nothing. */
  dryRun: boolean;
}

/** Parses the words after `vigil notifications`; throws {@link DeadLetterUsageError} naming what is wrong. */
export function parseNotificationsArgs(args: readonly string[], now: Date = new Date()): NotificationsCommand {
  const [command, ...rest] = args;
  if (command !== 'missed' && command !== 'resend') throw new DeadLetterUsageError(command === undefined ? 'a subcommand is needed: missed or resend' : `unknown subcommand "${command}"; use missed or resend`);
  const parsed: NotificationsCommand = { command, destinations: [], dryRun: false };
  for (let index = 0; index < rest.length; index++) {
    const option = rest[index] ?? '';
    if (option === '--dry-run' && command === 'resend') {
      parsed.dryRun = true;
      continue;
    }
    if (option !== '--from' && option !== '--to' && option !== '--destination') {
      throw new DeadLetterUsageError(option.startsWith('-') ? `unknown option ${option} for notifications ${command}` : `unexpected argument "${option}" for notifications ${command}`);
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
  /** resend: where the sends are remembered, so that none is made twice. */
  redis?: RedisClient;
  logger?: Logger;
  out?: (line: string) => void;
  scan?: ScanOptions;
  /** resend: the notifier's retry settings (tests shorten them). @defaultValue the notifier's */
  retry?: Pick<NotifierOptions, 'retries' | 'initialDelayMs' | 'maxDelayMs'>;
}

/** The selected dead letters of the notification dead-letter topic, and how many messages were not ones. */
async function readDeadLetters(context: NotificationsContext, kafka: Kafka, command: NotificationsCommand): Promise<{ topic: string; entries: ({ alertId: string } & Missed)[]; unreadable: number }> {
  const topic = context.config.alerting.notificationDeadLetterTopic;
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
  return { topic, entries, unreadable };
}

/** Reads the notification dead-letter topic and the alerts' states: the report `missed` prints. */
export async function readMissed(context: NotificationsContext, command: NotificationsCommand): Promise<MissedReport> {
  const { config } = context;
  const logger = context.logger ?? createLogger({ level: 'warn', secrets: secretsOf(config) });
  const kafka = context.kafka ?? createKafka(config, logger, `${config.kafka.clientId}-notifications`);
  const { topic, entries, unreadable } = await readDeadLetters(context, kafka, command);
  const documents = await alertDocuments(context.elasticsearch ?? createElasticsearch(config), alertIndexNames(config.indices.prefix).index, [...new Set(entries.map((entry) => entry.alertId))]);
  const states = new Map<string, AlertState>();
  for (const [id, source] of documents) {
    const parsed = alertSourceSchema.safeParse(source);
    if (parsed.success) states.set(id, { status: parsed.data.kibana.alert.status, severity: parsed.data.kibana.alert.severity, title: parsed.data.vigil.alert.title });
  }
  return summariseMissed(topic, entries, states, unreadable);
}

const alertSourceSchema = z.looseObject({
  kibana: z.looseObject({ alert: z.looseObject({ status: z.string(), severity: z.string() }) }),
  vigil: z.looseObject({ alert: z.looseObject({ title: z.string() }) }),
});

/** The alerts' documents now, by id (one mget); an alert the index does not hold is left out. */
async function alertDocuments(elasticsearch: Client, index: string, ids: readonly string[]): Promise<Map<string, unknown>> {
  const documents = new Map<string, unknown>();
  if (ids.length === 0) return documents;
  let response;
  try {
    response = await elasticsearch.mget({ index, ids: [...ids] });
  } catch (error) {
    throw new VigilError(`elasticsearch: could not read the alerts (${index}) to say which are still open: ${error instanceof Error ? error.message : String(error)}`, { code: 'store_unavailable', retriable: true, cause: error });
  }
  for (const doc of response.docs) {
    if ('found' in doc && doc.found) documents.set(doc._id, doc._source);
  }
  return documents;
}

/** One notification `resend` sends: what a destination missed about an alert, as the alert is now. */
export interface Resend {
  alertId: string;
  destination: Destination;
  change: AlertChange;
}

/** What `resend` sends, and what it leaves, with why. */
export interface ResendPlan {
  send: Resend[];
  skipped: { alertId: string; destination: string; why: string }[];
}

/**
 * Decides, per alert and destination among the selected dead letters, what to send: a still-open
 * alert as `opened` where its opening was missed (the destination never heard of it), else as
 * `escalated` (what it missed is older than what the alert is now); a resolved alert's `resolved`
 * where that was missed but not the opening (a page it opened stays open otherwise); nothing for a
 * resolved incident the destination never heard of, an alert the index does not hold, a
 * destination no longer configured, or one whose routing (severity, tags, changes) no longer
 * takes the change. Alerts and destinations in name order.
 */
export function planResend(entries: readonly ({ alertId: string } & Pick<Missed, 'destination' | 'kind'>)[], alerts: ReadonlyMap<string, Alert>, destinations: readonly Destination[]): ResendPlan {
  const missed = new Map<string, { alertId: string; destination: string; kinds: Set<AlertChangeKind> }>();
  for (const entry of entries) {
    const key = `${entry.alertId}\u0000${entry.destination}`;
    const pair = missed.get(key) ?? { alertId: entry.alertId, destination: entry.destination, kinds: new Set<AlertChangeKind>() };
    pair.kinds.add(entry.kind);
    missed.set(key, pair);
  }
  const plan: ResendPlan = { send: [], skipped: [] };
  const pairs = [...missed.values()].sort((a, b) => a.alertId.localeCompare(b.alertId) || a.destination.localeCompare(b.destination));
  for (const { alertId, destination: name, kinds } of pairs) {
    const skip = (why: string): void => {
      plan.skipped.push({ alertId, destination: name, why });
    };
    const destination = destinations.find((item) => item.name === name);
    if (destination === undefined) {
      skip('the destination is no longer configured (VIGIL_ALERT_DESTINATIONS)');
      continue;
    }
    const alert = alerts.get(alertId);
    if (alert === undefined) {
      skip('the alert is not in the alerts index');
      continue;
    }
    let kind: AlertChangeKind;
    if (alert.status === 'open') kind = kinds.has('opened') ? 'opened' : 'escalated';
    else if (kinds.has('opened')) {
      skip('resolved, and never announced there: nothing to close');
      continue;
    } else if (kinds.has('resolved')) kind = 'resolved';
    else {
      skip('resolved since, and its resolve is not among the missed');
      continue;
    }
    const change: AlertChange = { kind, alert };
    if (routesFor([destination], change).length === 0) {
      skip(`its routing does not take a ${alert.severity} alert's ${kind} (minSeverity, tags or events)`);
      continue;
    }
    plan.send.push({ alertId, destination, change });
  }
  return plan;
}

/** What became of one resend. */
export type ResendOutcome = 'sent' | 'would send' | 'sent before' | 'failed (dead-lettered again)';

/** The result of `resend`: the plan and each send's outcome. */
export interface ResendReport {
  topic: string;
  total: number;
  plan: ResendPlan;
  outcomes: { resend: Resend; outcome: ResendOutcome }[];
}

/**
 * `resend`: reads the selected dead letters and the alerts as they are now, plans (see
 * {@link planResend}) and sends, one at a time, through a notifier of that destination alone (its
 * retries; a send that fails for good is dead-lettered again, so `missed` still shows it). Each
 * send is remembered in Redis by its delivery id (the alert, its revision, the change, the
 * destination), so a second run sends nothing twice; a change of the alert since makes it new.
 */
export async function resendMissed(context: NotificationsContext, command: NotificationsCommand): Promise<ResendReport> {
  const { config } = context;
  const logger = context.logger ?? createLogger({ level: 'warn', secrets: secretsOf(config) });
  const kafka = context.kafka ?? createKafka(config, logger, `${config.kafka.clientId}-notifications`);
  const { topic, entries } = await readDeadLetters(context, kafka, command);
  const documents = await alertDocuments(context.elasticsearch ?? createElasticsearch(config), alertIndexNames(config.indices.prefix).index, [...new Set(entries.map((entry) => entry.alertId))]);
  const alerts = new Map<string, Alert>();
  for (const [id, source] of documents) {
    const read = fromAlertDocument(source);
    if ('alert' in read) alerts.set(id, read.alert);
    else logger.warn({ alertId: id, problem: read.problem }, 'resend: an alert document could not be read; its notifications are left out');
  }
  const plan = planResend(entries, alerts, parseDestinations(config.alerting.destinations));
  const report: ResendReport = { topic, total: entries.length, plan, outcomes: [] };
  if (plan.send.length === 0) return report;
  const redis = context.redis ?? createRedis(config, logger);
  const sent = createDeliveredLog(redis, `${config.redis.prefix}:resend`);
  const producer = command.dryRun ? undefined : kafka.producer({ allowAutoTopicCreation: false });
  try {
    await producer?.connect();
    for (const resend of plan.send) {
      const deliveryId = deliveryIdOf(resend.change, resend.destination);
      if ((await sent.delivered([deliveryId])).has(deliveryId)) {
        report.outcomes.push({ resend, outcome: 'sent before' });
        continue;
      }
      if (producer === undefined) {
        report.outcomes.push({ resend, outcome: 'would send' });
        continue;
      }
      const notifier = createNotifier({ destinations: [resend.destination], producer, deadLetterTopic: config.alerting.notificationDeadLetterTopic, logger, ...context.retry });
      notifier.notify(resend.change);
      await notifier.drain();
      const delivered = notifier.stats().sent === 1;
      if (delivered) await sent.remember(deliveryId);
      report.outcomes.push({ resend, outcome: delivered ? 'sent' : 'failed (dead-lettered again)' });
    }
  } finally {
    await producer?.disconnect();
    if (context.redis === undefined) redis.disconnect();
  }
  return report;
}

/** The lines `resend` prints. */
export function formatResend(report: ResendReport): string[] {
  const { plan } = report;
  const lines = [`${report.topic}: ${report.total} notifications failed for good; ${plan.send.length} to resend, ${plan.skipped.length} left out`];
  for (const { resend, outcome } of report.outcomes) {
    const { alert, kind } = resend.change;
    lines.push(`  ${resend.alertId}  ${resend.destination.name}: ${kind} (${alert.severity}, revision ${alert.revision}): ${outcome}`);
  }
  for (const { alertId, destination, why } of plan.skipped) lines.push(`  ${alertId}  ${destination}: left out: ${why}`);
  return lines;
}

/** `vigil notifications ...`: returns the exit code (2 for a command line that does not parse, 1 when a resend failed). */
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
  if (command.command === 'resend') {
    const report = await resendMissed(context, command);
    for (const line of formatResend(report)) out(line);
    return report.outcomes.some(({ outcome }) => outcome === 'failed (dead-lettered again)') ? 1 : 0;
  }
  for (const line of formatMissed(await readMissed(context, command))) out(line);
  return 0;
}
