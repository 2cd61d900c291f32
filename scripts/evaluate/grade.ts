/**
 * The evaluator's grader: matches what Vigil raised (alerts, their detections, the notifications
 * delivered) to the labelled cases by key and event-time overlap, and checks the targets of
 * issue 9. Pure: the runner reads the stores, this only judges.
 */
import { SEVERITIES, type Severity } from '../../schemas';
import type { EvaluationCase } from './generate';

/** A detection as the grader needs it. */
export interface ObservedDetection {
  id: string;
  ruleId: string;
  severity: Severity;
  key: Record<string, string>;
  /** Event time of the event that completed it. */
  time: string;
}

/** An alert (its newest revision) as the grader needs it. */
export interface ObservedAlert {
  id: string;
  severity: Severity;
  key: Record<string, string>;
  rules: string[];
  /** Ids of the detections behind it (the store keeps the newest). */
  detections: string[];
  count: number;
}

/** One notification a destination received, with the alert it was about when it could be read. */
export interface ObservedNotification {
  destination: string;
  /** The alerts it names (one, or several for a grouped notification; none when unreadable). */
  alertIds: string[];
}

/** What Vigil raised for one case. */
export interface CaseGrade {
  case: EvaluationCase;
  /** For an attack: an alert is on one of its right keys. Always false for a benign case. */
  caught: boolean;
  alerts: string[];
  bySeverity: Record<Severity, number>;
  /** The rules behind its alerts. */
  rules: string[];
  notifications: Record<string, number>;
  /** The most notifications one destination got about it. */
  maxPerDestination: number;
}

/** One target of issue 9, met or not, with the figures. */
export interface TargetCheck {
  target: string;
  met: boolean;
  detail: string;
}

/** The grade of one evaluation run. */
export interface Grade {
  attacks: CaseGrade[];
  benign: CaseGrade[];
  totals: {
    detections: number;
    alerts: number;
    bySeverity: Record<Severity, number>;
    notifications: number;
    byDestination: Record<string, number>;
    /** Alerts that belong to no case: raised on the background traffic. */
    unmatched: number;
    unmatchedBySeverity: Record<Severity, number>;
    recall: { caught: number; attacks: number };
  };
  targets: TargetCheck[];
}

/** Limits of the targets (issue 9). */
export interface GradeLimits {
  /** Alerts one attack may raise in total. @defaultValue 2 */
  alertsPerAttack: number;
  /** Notifications one destination may get about one attack (opened, one grouped escalation, resolved). @defaultValue 3 */
  notificationsPerDestination: number;
}

const DEFAULT_LIMITS: GradeLimits = { alertsPerAttack: 2, notificationsPerDestination: 3 };
/** Slack around a case's interval: a detection completes shortly after the last event it counts. */
const OVERLAP_SLACK_MS = 60_000;

const noSeverities = (): Record<Severity, number> => Object.fromEntries(SEVERITIES.map((severity) => [severity, 0])) as Record<Severity, number>;
const atLeastMedium = (counts: Record<Severity, number>): number => SEVERITIES.filter((severity) => severity !== 'low').reduce((total, severity) => total + counts[severity], 0);

/** Whether the values of a key name one of the case's keys (all its values present) or one of its entities. */
function touches(values: ReadonlySet<string>, item: EvaluationCase, entities: ReadonlySet<string>): boolean {
  if (item.keys.some((key) => key.every((value) => values.has(value)))) return true;
  for (const value of values) if (entities.has(value)) return true;
  return false;
}

/**
 * Grades a run. An alert belongs to a case when its key, or the key of one of its detections,
 * names the case's keys or one of its entities, and its detections' event times overlap the
 * case's interval (an alert whose detections are unknown is judged by key alone). An attack is
 * caught when an alert's own key names one of its right keys. An alert may belong to several
 * cases; one that belongs to none is unmatched.
 */
export function gradeEvaluation(
  cases: readonly EvaluationCase[],
  observed: { detections: readonly ObservedDetection[]; alerts: readonly ObservedAlert[]; notifications: readonly ObservedNotification[]; destinations?: readonly string[] },
  limits: Partial<GradeLimits> = {},
): Grade {
  const { alertsPerAttack, notificationsPerDestination } = { ...DEFAULT_LIMITS, ...limits };
  const detectionsById = new Map(observed.detections.map((detection) => [detection.id, detection]));
  // Every configured destination has a column, those that heard nothing included.
  const byDestination: Record<string, number> = Object.fromEntries((observed.destinations ?? []).map((destination) => [destination, 0]));
  for (const notification of observed.notifications) {
    byDestination[notification.destination] = (byDestination[notification.destination] ?? 0) + 1;
  }
  const destinations = Object.keys(byDestination).sort();

  const alerts = observed.alerts.map((alert) => {
    const own = new Set(Object.values(alert.key));
    const evidence = new Set(own);
    let first = Infinity;
    let last = -Infinity;
    for (const id of alert.detections) {
      const detection = detectionsById.get(id);
      if (detection === undefined) continue;
      for (const value of Object.values(detection.key)) evidence.add(value);
      const time = Date.parse(detection.time);
      first = Math.min(first, time);
      last = Math.max(last, time);
    }
    return { alert, own, evidence, span: Number.isFinite(first) ? { first, last } : undefined };
  });

  const matched = new Set<string>();
  const gradeCase = (item: EvaluationCase): CaseGrade => {
    const entities = new Set(item.entities);
    const from = Date.parse(item.start) - OVERLAP_SLACK_MS;
    const to = Date.parse(item.end) + OVERLAP_SLACK_MS;
    const mine = alerts.filter(({ evidence, span }) => touches(evidence, item, entities) && (span === undefined || (span.first <= to && span.last >= from)));
    const bySeverity = noSeverities();
    const notifications: Record<string, number> = Object.fromEntries(destinations.map((destination) => [destination, 0]));
    const rules = new Set<string>();
    const ids = new Set<string>();
    for (const { alert } of mine) {
      matched.add(alert.id);
      ids.add(alert.id);
      bySeverity[alert.severity]++;
      for (const rule of alert.rules) rules.add(rule);
    }
    // A grouped notification naming several of the case's alerts counts once.
    for (const notification of observed.notifications) {
      if (notification.alertIds.some((id) => ids.has(id))) notifications[notification.destination] = (notifications[notification.destination] ?? 0) + 1;
    }
    const caught = item.kind === 'attack' && mine.some(({ own }) => item.keys.some((key) => key.every((value) => own.has(value))));
    return { case: item, caught, alerts: mine.map(({ alert }) => alert.id), bySeverity, rules: [...rules], notifications, maxPerDestination: Math.max(0, ...Object.values(notifications)) };
  };
  const attacks = cases.filter((item) => item.kind === 'attack').map(gradeCase);
  const benign = cases.filter((item) => item.kind === 'benign').map(gradeCase);

  const bySeverity = noSeverities();
  const unmatchedBySeverity = noSeverities();
  for (const { alert } of alerts) {
    bySeverity[alert.severity]++;
    if (!matched.has(alert.id)) unmatchedBySeverity[alert.severity]++;
  }
  const caught = attacks.filter((grade) => grade.caught).length;
  const notifications = observed.notifications.length;
  const lowAlerts = new Set(observed.alerts.filter((alert) => alert.severity === 'low').map((alert) => alert.id));
  const lowPages = observed.notifications.filter((notification) => notification.alertIds.length > 0 && notification.alertIds.every((id) => lowAlerts.has(id))).length;
  const over = (grades: readonly CaseGrade[], test: (grade: CaseGrade) => boolean): string =>
    grades
      .filter(test)
      .map((grade) => grade.case.id)
      .join(', ');
  const benignMedium = benign.reduce((total, grade) => total + atLeastMedium(grade.bySeverity), 0);
  const benignPages = benign.reduce((total, grade) => total + Object.values(grade.notifications).reduce((sum, count) => sum + count, 0), 0);
  const tooManyAlerts = over(attacks, (grade) => grade.alerts.length > alertsPerAttack);
  const tooManyNotifications = over(attacks, (grade) => grade.maxPerDestination > notificationsPerDestination);
  const flood = attacks.find((grade) => grade.case.id === 'distributed-flood');
  const targets: TargetCheck[] = [
    { target: 'every attack raises an incident on a right key (recall 100%)', met: caught === attacks.length, detail: `${caught}/${attacks.length}${caught < attacks.length ? `; missed: ${over(attacks, (grade) => !grade.caught)}` : ''}` },
    {
      target: `one incident per attack: at most ${alertsPerAttack} alerts per attack (the flood included)`,
      met: tooManyAlerts === '',
      detail: `most: ${Math.max(0, ...attacks.map((grade) => grade.alerts.length))}${flood ? `; the flood: ${flood.alerts.length}` : ''}${tooManyAlerts ? `; over: ${tooManyAlerts}` : ''}`,
    },
    { target: `at most ${notificationsPerDestination} notifications per destination per attack`, met: tooManyNotifications === '', detail: `most: ${Math.max(0, ...attacks.map((grade) => grade.maxPerDestination))}${tooManyNotifications ? `; over: ${tooManyNotifications}` : ''}` },
    { target: 'zero alerts of medium severity or above on the benign cases', met: benignMedium === 0, detail: `${benignMedium}${benignMedium > 0 ? ` (${over(benign, (grade) => atLeastMedium(grade.bySeverity) > 0)})` : ''}` },
    { target: 'low-severity signals alone page nobody (no notification on a benign case or a low alert)', met: benignPages === 0 && lowPages === 0, detail: `benign cases: ${benignPages}, low alerts: ${lowPages}` },
  ];
  return {
    attacks,
    benign,
    totals: {
      detections: observed.detections.length,
      alerts: observed.alerts.length,
      bySeverity,
      notifications,
      byDestination,
      unmatched: alerts.length - matched.size,
      unmatchedBySeverity,
      recall: { caught, attacks: attacks.length },
    },
    targets,
  };
}

const severityText = (counts: Record<Severity, number>): string => {
  const parts = [...SEVERITIES].reverse().filter((severity) => counts[severity] > 0).map((severity) => `${counts[severity]} ${severity}`);
  return parts.length > 0 ? parts.join(', ') : '-';
};
const pad = (text: string, width: number): string => (text.length >= width ? text : text + ' '.repeat(width - text.length));

/** The recall line, in a stable format: `recall 8/9 (89%)`. */
export function recallLine(grade: Grade): string {
  const { caught, attacks } = grade.totals.recall;
  return `recall ${caught}/${attacks} (${attacks === 0 ? 100 : Math.round((caught / attacks) * 100)}%)`;
}

/** The totals line, in a stable format: `totals detections N alerts N notifications N unmatched N`. */
export function totalsLine(grade: Grade): string {
  const { detections, alerts, notifications, unmatched } = grade.totals;
  return `totals detections ${detections} alerts ${alerts} notifications ${notifications} unmatched ${unmatched}`;
}

/** The grade as a plain-text table (monospace): attacks, benign cases, totals and targets. */
export function formatGrade(grade: Grade): string {
  const destinations = Object.keys(grade.totals.byDestination).sort();
  const notes = (counts: Record<string, number>): string => (destinations.length === 0 ? '-' : destinations.map((destination) => String(counts[destination] ?? 0)).join('/'));
  const destinationHeader = destinations.length === 0 ? 'notifications' : `notifications (${destinations.join('/')})`;
  const lines: string[] = [];
  const width = 28;
  const notesWidth = Math.max(42, destinationHeader.length + 2);
  lines.push(`${pad('attack', width)}${pad('caught', 8)}${pad('alerts', 30)}${pad(destinationHeader, notesWidth)}rules`);
  for (const row of grade.attacks) {
    lines.push(`${pad(row.case.id, width)}${pad(row.caught ? 'yes' : 'NO', 8)}${pad(`${row.alerts.length}${row.alerts.length > 0 ? ` (${severityText(row.bySeverity)})` : ''}`, 30)}${pad(notes(row.notifications), notesWidth)}${row.rules.join(', ') || '-'}`);
  }
  lines.push('');
  lines.push(`${pad('benign case', width)}${pad('', 8)}${pad('alerts', 30)}${pad(destinationHeader, notesWidth)}rules`);
  for (const row of grade.benign) {
    lines.push(`${pad(row.case.id, width)}${pad('', 8)}${pad(`${row.alerts.length}${row.alerts.length > 0 ? ` (${severityText(row.bySeverity)})` : ''}`, 30)}${pad(notes(row.notifications), notesWidth)}${row.rules.join(', ') || '-'}`);
  }
  lines.push('');
  lines.push(recallLine(grade));
  lines.push(totalsLine(grade));
  lines.push(
    `  alerts by severity: ${severityText(grade.totals.bySeverity)}; unmatched (background): ${grade.totals.unmatched} (${severityText(grade.totals.unmatchedBySeverity)}); notifications by destination: ${destinations.map((destination) => `${destination} ${grade.totals.byDestination[destination] ?? 0}`).join(', ') || '-'}`,
  );
  lines.push('');
  lines.push('targets (issue 9)');
  for (const target of grade.targets) lines.push(`  ${target.met ? 'met   ' : 'NOT MET'} ${target.target}: ${target.detail}`);
  return lines.join('\n');
}
