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
import { createDeliveredLog, createNotifier, fromAlertDocument, parseDestinations, routesFor, type Destination, type NotifierOptions } from '../detectors';
import { alertDiscoverUrl } from '../dashboards';
import { VigilError, createElasticsearch, createKafka, createLogger, createProducer, createRedis, nearest, requireConnections, secretsOf, type Config, type Logger, type RedisClient } from '../platform';
import { ALERT_CHANGES, alertIndexNames, type Alert, type AlertChange, type AlertChangeKind } from '../schemas';
import { terminalText } from './cli-text';
import { DeadLetterUsageError, iso, parseTime, refuseRepeated, scanToEnd, type ScanOptions } from './deadletters';

/** The usage text of `vigil notifications`. */
export const NOTIFICATIONS_USAGE = `usage: vigil notifications missed [--from TIME --to TIME] [--destination NAME]
       vigil notifications resend [--from TIME --to TIME] [--destination NAME] [--dry-run]

missed: lists the notifications that failed for good (the notification dead-letter topic,
VIGIL_TOPIC_NOTIFICATION_DEADLETTER), per alert: the destinations that missed which changes, the
last error, and the alert's state now, open alerts first.
resend: sends each destination what it missed, built from the alert as it is now: a still-open
alert as "opened" where its opening was missed, else as "escalated" (its current severity); a
resolved alert's "resolved" wherever that was missed (the page it opened gets closed); nothing
else about an incident that is over. Each dead letter is answered once: run again, it sends
nothing twice. Exits 1 when a send failed (it is dead-lettered again).
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
  const given = new Set<string>();
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
    if (option === '--destination') {
      parsed.destinations.push(value);
      continue;
    }
    // Only the last was read: `--from now-1h --from now-30d` listed a month.
    refuseRepeated(given, option);
    parsed[option === '--from' ? 'from' : 'to'] = parseTime(option, value, now);
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
    const status = state === undefined ? 'unknown (not in the alerts index)' : state.status === 'active' ? 'STILL OPEN' : terminalText(state.status);
    // The receiver's answer (in the error), the title and the ids are text others chose: escaped,
    // so none can clear, recolour or retitle the terminal, or print a line of its own.
    lines.push(`  ${terminalText(alertId)}  ${status}${state ? `  ${terminalText(state.severity)}  ${terminalText(state.title)}` : ''}`);
    for (const entry of missed) lines.push(`    ${terminalText(entry.destination)}: ${entry.kind} at ${iso(entry.time)}, ${entry.attempts} attempts: ${terminalText(entry.error)}`);
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

/** A selected dead letter, with where it is on the topic (`<partition>:<offset>`). */
type DeadLetterEntry = { alertId: string; position: string } & Missed;

/** The selected dead letters of the notification dead-letter topic, and how many messages were not ones. */
async function readDeadLetters(context: NotificationsContext, kafka: Kafka, command: NotificationsCommand): Promise<{ topic: string; entries: DeadLetterEntry[]; unreadable: number }> {
  const topic = context.config.alerting.notificationDeadLetterTopic;
  const entries: DeadLetterEntry[] = [];
  let unreadable = 0;
  await scanToEnd(
    kafka,
    topic,
    (message, partition) => {
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
      entries.push({ alertId: parsed.alertId, position: `${partition}:${message.offset}`, destination: parsed.destination, kind: parsed.kind, error: parsed.error, attempts: parsed.attempts, time });
    },
    context.scan ?? {},
    `the notification dead-letter topic "${topic}" does not exist: no notification failed yet, or VIGIL_TOPIC_NOTIFICATION_DEADLETTER names another topic`,
  );
  return { topic, entries, unreadable };
}

/** The Elasticsearch client of a command: the context's, or one of its own, closed once the command is done. */
async function withElasticsearch<T>(context: NotificationsContext, work: (elasticsearch: Client) => Promise<T>): Promise<T> {
  if (context.elasticsearch !== undefined) return work(context.elasticsearch);
  const own = createElasticsearch(context.config);
  try {
    return await work(own);
  } finally {
    await own.close();
  }
}

/** The context's logger and Kafka client, or ones made from its configuration. */
function clientsOf(context: NotificationsContext): { logger: Logger; kafka: Kafka } {
  const logger = context.logger ?? createLogger({ level: 'warn', secrets: secretsOf(context.config) });
  return { logger, kafka: context.kafka ?? createKafka(context.config, logger, `${context.config.kafka.clientId}-notifications`) };
}

/** Reads the notification dead-letter topic and the alerts' states: the report `missed` prints. */
export async function readMissed(context: NotificationsContext, command: NotificationsCommand): Promise<MissedReport> {
  const { config } = context;
  const { kafka } = clientsOf(context);
  const { topic, entries, unreadable } = await readDeadLetters(context, kafka, command);
  const documents = await withElasticsearch(context, (elasticsearch) => alertDocuments(elasticsearch, alertIndexNames(config.indices.prefix).index, [...new Set(entries.map((entry) => entry.alertId))]));
  const states = new Map<string, AlertState>();
  for (const [id, source] of documents) {
    const parsed = alertSourceSchema.safeParse(source);
    if (parsed.success) states.set(id, { status: parsed.data.kibana.alert.status, severity: parsed.data.kibana.alert.severity, title: parsed.data.vigil.alert.title });
  }
  return summariseMissed(topic, entries.map(({ position: _position, ...entry }) => entry), states, unreadable);
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
    throw new VigilError(`elasticsearch: could not read the alerts (${index}): ${error instanceof Error ? error.message : String(error)}`, { code: 'store_unavailable', retriable: true, cause: error });
  }
  for (const doc of response.docs) {
    if ('found' in doc && doc.found) documents.set(doc._id, doc._source);
  }
  return documents;
}

/** The alerts as they are now, by id, read back from their documents (one unreadable is logged and left out). */
async function currentAlerts(elasticsearch: Client, index: string, ids: readonly string[], logger: Logger): Promise<Map<string, Alert>> {
  const alerts = new Map<string, Alert>();
  for (const [id, source] of await alertDocuments(elasticsearch, index, ids)) {
    const read = fromAlertDocument(source);
    if ('alert' in read) alerts.set(id, read.alert);
    else logger.warn({ alertId: id, problem: read.problem }, 'resend: an alert document could not be read; its notifications are left out');
  }
  return alerts;
}

/** One notification `resend` sends: what a destination missed about an alert, as the alert is now. */
export interface Resend {
  alertId: string;
  destination: Destination;
  change: AlertChange;
  /** The dead letters it answers: their change kinds and where they are on the topic. */
  missed: { kind: AlertChangeKind; position: string }[];
}

/** What `resend` sends, and what it leaves, with why. */
export interface ResendPlan {
  send: Resend[];
  skipped: { alertId: string; destination: string; why: string }[];
}

/**
 * Decides, per alert and destination among the selected dead letters, what to send. A still-open
 * alert: `opened` where its opening was missed (the destination may never have heard of it), else
 * `escalated` (what it missed is older than what the alert is now). A resolved alert: its
 * `resolved` where that was missed, whatever else was (a later change may have reached the
 * destination between two failures, and a resolve of an incident it never heard of closes
 * nothing: PagerDuty ignores it); nothing where only earlier changes were missed. Nothing for an
 * alert the index does not hold, a destination no longer configured, or one whose routing
 * (severity, tags, changes) no longer takes the change. Alerts and destinations in name order.
 */
export function planResend(entries: readonly ({ alertId: string; position?: string } & Pick<Missed, 'destination' | 'kind'>)[], alerts: ReadonlyMap<string, Alert>, destinations: readonly Destination[]): ResendPlan {
  const pairs = new Map<string, { alertId: string; destination: string; missed: { kind: AlertChangeKind; position: string }[] }>();
  for (const entry of entries) {
    const key = `${entry.alertId}\u0000${entry.destination}`;
    const pair = pairs.get(key) ?? { alertId: entry.alertId, destination: entry.destination, missed: [] };
    pair.missed.push({ kind: entry.kind, position: entry.position ?? '' });
    pairs.set(key, pair);
  }
  const plan: ResendPlan = { send: [], skipped: [] };
  const sorted = [...pairs.values()].sort((a, b) => a.alertId.localeCompare(b.alertId) || a.destination.localeCompare(b.destination));
  for (const { alertId, destination: name, missed } of sorted) {
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
    const kinds = new Set(missed.map((item) => item.kind));
    let kind: AlertChangeKind;
    // A missed resolve is sent whatever the document says: an alert id never opens again, and a
    // document left `open` by a failed write after the resolve (the alerter logs it) would have
    // sent a trigger that nothing would ever close.
    if (kinds.has('resolved')) kind = 'resolved';
    else if (alert.status === 'open') kind = kinds.has('opened') ? 'opened' : 'escalated';
    else {
      skip('resolved since, and its resolve is not among the missed');
      continue;
    }
    const change: AlertChange = { kind, alert: kind === 'resolved' && alert.status !== 'resolved' ? { ...alert, status: 'resolved' } : alert };
    if (routesFor([destination], change).length === 0) {
      skip(`its routing does not take a ${alert.severity} alert's ${kind} (minSeverity, tags or events)`);
      continue;
    }
    plan.send.push({ alertId, destination, change, missed });
  }
  return plan;
}

/** What became of one resend. */
export type ResendOutcome =
  | 'sent'
  | 'sent (not remembered: a second run would send it again)'
  | 'would send'
  | 'sent before'
  | 'failed (dead-lettered again)'
  | 'failed (its dead letter could not be written either: see the log)'
  | `left out: ${string}`;

/** The result of `resend`: the plan and each send's outcome. */
export interface ResendReport {
  topic: string;
  total: number;
  plan: ResendPlan;
  outcomes: { resend: Resend; outcome: ResendOutcome }[];
}

/** How long `resend` remembers a dead letter it answered, at least: the notification dead-letter topic's least retention (30 days; longer with VIGIL_TOPIC_RETENTION_MS). */
export const RESENT_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * `resend`: reads the selected dead letters and the alerts as they are now, plans (see
 * {@link planResend}) and sends, one at a time, each through a notifier of that destination alone
 * (the notifier's retries; a send that fails for good is dead-lettered again, so `missed` still
 * shows it). Just before each send the alert is read again and the send planned again, so an alert
 * that resolved meanwhile gets no stale `opened`. The dead letters a send answered are remembered
 * in Redis by their place on the topic: a second run sends nothing for them, whatever the alert
 * became since; a new failure is a new dead letter, and is answered again.
 */
export async function resendMissed(context: NotificationsContext, command: NotificationsCommand): Promise<ResendReport> {
  const { config } = context;
  const { logger, kafka } = clientsOf(context);
  const { topic, entries } = await readDeadLetters(context, kafka, command);
  const index = alertIndexNames(config.indices.prefix).index;
  const destinations = parseDestinations(config.alerting.destinations);
  const kibanaUrl = config.alerting.kibanaUrl;
  const alertLink = kibanaUrl === undefined ? undefined : (alert: Alert): string => alertDiscoverUrl(kibanaUrl, config.indices.prefix, alert);
  return withElasticsearch(context, async (elasticsearch) => {
    const alerts = await currentAlerts(elasticsearch, index, [...new Set(entries.map((entry) => entry.alertId))], logger);
    const plan = planResend(entries, alerts, destinations);
    const report: ResendReport = { topic, total: entries.length, plan, outcomes: [] };
    if (plan.send.length === 0) return report;
    const redis = context.redis ?? createRedis(config, logger);
    // As long as the topic keeps them: at least 30 days, longer with a longer VIGIL_TOPIC_RETENTION_MS.
    const answered = createDeliveredLog(redis, `${config.redis.prefix}:resend`, Math.max(RESENT_TTL_MS, config.topics.retentionMs ?? 0));
    const producer = command.dryRun ? undefined : createProducer(kafka);
    try {
      await producer?.connect();
      for (const planned of plan.send) {
        const ids = planned.missed.map((item) => `${topic}:${item.position}`);
        const remembered = await answered.delivered(ids);
        if (ids.every((id) => remembered.has(id))) {
          report.outcomes.push({ resend: planned, outcome: 'sent before' });
          continue;
        }
        if (producer === undefined) {
          report.outcomes.push({ resend: planned, outcome: 'would send' });
          continue;
        }
        // The alert as it is at this moment: it may have changed while earlier sends retried.
        const fresh = await currentAlerts(elasticsearch, index, [planned.alertId], logger);
        const again = planResend(
          planned.missed.map(({ kind, position }) => ({ alertId: planned.alertId, destination: planned.destination.name, kind, position })),
          fresh,
          destinations,
        );
        const resend = again.send[0];
        if (resend === undefined) {
          report.outcomes.push({ resend: planned, outcome: `left out: ${again.skipped[0]?.why ?? 'nothing to send'} (it changed during the run)` });
          continue;
        }
        const notifier = createNotifier({
          destinations: [resend.destination],
          producer,
          deadLetterTopic: config.alerting.notificationDeadLetterTopic,
          logger,
          ...(alertLink === undefined ? {} : { alertLink }),
          ...context.retry,
        });
        notifier.notify(resend.change);
        await notifier.drain();
        const stats = notifier.stats();
        if (stats.sent === 1) {
          let outcome: ResendOutcome = 'sent';
          try {
            for (const id of ids) await answered.remember(id);
          } catch (error) {
            logger.warn({ err: error, alertId: resend.alertId, destination: resend.destination.name }, 'resend: sent, but could not remember it');
            outcome = 'sent (not remembered: a second run would send it again)';
          }
          report.outcomes.push({ resend, outcome });
        } else {
          report.outcomes.push({ resend, outcome: stats.deadLettered === 1 ? 'failed (dead-lettered again)' : 'failed (its dead letter could not be written either: see the log)' });
        }
      }
    } finally {
      await producer?.disconnect();
      if (context.redis === undefined) redis.disconnect();
    }
    return report;
  });
}

/** The lines `resend` prints. */
export function formatResend(report: ResendReport): string[] {
  const { plan } = report;
  const lines = [`${report.topic}: ${report.total} notifications failed for good; ${plan.send.length} to resend, ${plan.skipped.length} left out`];
  for (const { resend, outcome } of report.outcomes) {
    const { alert, kind } = resend.change;
    lines.push(`  ${terminalText(resend.alertId)}  ${terminalText(resend.destination.name)}: ${kind} (${terminalText(alert.severity)}, revision ${alert.revision}): ${outcome}`);
  }
  // A dead letter's alert id and destination are whatever its writer put there: escaped, as in `missed`.
  for (const { alertId, destination, why } of plan.skipped) lines.push(`  ${terminalText(alertId)}  ${terminalText(destination)}: left out: ${why}`);
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
  const given = typeof contextOf === 'function' ? contextOf() : contextOf;
  const out = given.out ?? ((line: string) => console.log(line));
  // A --destination no configured destination is named: a typo matched nothing and said so by
  // exiting 0. `missed` may still look for a destination removed since (its dead letters stay):
  // said, not refused; `resend` can't send to one it has no settings for.
  const configured = parseDestinations(given.config.alerting.destinations).map(({ name }) => name);
  const unknown = command.destinations.filter((name) => !configured.includes(name));
  if (unknown.length > 0) {
    const hint = (name: string): string => {
      const near = nearest(name, configured, 3);
      return near === undefined ? `"${name}"` : `"${name}" (did you mean ${near}?)`;
    };
    const message = `--destination: no destination named ${unknown.map(hint).join(', ')} in VIGIL_ALERT_DESTINATIONS (${configured.length > 0 ? configured.join(', ') : 'none configured'})`;
    if (command.command === 'resend') {
      console.error(`vigil notifications: ${message}`);
      return 2;
    }
    console.error(`vigil notifications: note: ${message}; looking for it in the dead letters all the same`);
  }
  // Kafka away or refusing: one line naming it and the setting to check, not kafkajs's retries.
  const { logger, kafka } = clientsOf(given);
  await requireConnections(given.config, { kafka });
  const context = { ...given, logger, kafka };
  if (command.command === 'resend') {
    const report = await resendMissed(context, command);
    for (const line of formatResend(report)) out(line);
    return report.outcomes.some(({ outcome }) => outcome.startsWith('failed')) ? 1 : 0;
  }
  for (const line of formatMissed(await readMissed(context, command))) out(line);
  return 0;
}
