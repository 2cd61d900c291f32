import type { EvaluationCase } from '../../scripts/evaluate/generate';
import { formatGrade, gradeEvaluation, recallLine, totalsLine, type ObservedAlert, type ObservedDetection, type ObservedNotification } from '../../scripts/evaluate/grade';
import { formatEvaluation, type EvaluationResult } from '../../scripts/evaluate/run';

const attack = (id: string, keys: string[][], entities: string[] = [], start = '2026-01-01T10:00:00Z', end = '2026-01-01T10:05:00Z'): EvaluationCase => ({ id, kind: 'attack', description: id, keys, entities, start, end, events: 10 });
const benign = (id: string, keys: string[][], entities: string[] = [], start = '2026-01-01T10:00:00Z', end = '2026-01-01T10:30:00Z'): EvaluationCase => ({ id, kind: 'benign', description: id, keys, entities, start, end, events: 10 });
const detection = (id: string, key: Record<string, string>, time = '2026-01-01T10:02:00Z', severity: ObservedDetection['severity'] = 'high'): ObservedDetection => ({ id, ruleId: `rule-${id}`, severity, key, time });
const alert = (id: string, key: Record<string, string>, detections: string[], severity: ObservedAlert['severity'] = 'high', rules = ['r']): ObservedAlert => ({ id, severity, key, rules, detections, count: detections.length });
const note = (destination: string, ...alertIds: string[]): ObservedNotification => ({ destination, alertIds });

const STUFFING = attack('credential-stuffing', [['6.6.6.6']], ['leaked1', 'leaked2']);
const FLOOD = attack('distributed-flood', [['identity-v2', '/v2/sessions']], ['1.0.0.1', '1.0.0.2', 'bob77']);
const NAT = benign('shared-nat', [['7.7.7.7']], ['staff1']);

describe('gradeEvaluation', () => {
  it('counts an attack caught when an alert is on a right key, with its alerts and notifications per destination', () => {
    const grade = gradeEvaluation([STUFFING], {
      detections: [detection('d1', { 'client.ip': '6.6.6.6' })],
      alerts: [alert('a1', { 'client.ip': '6.6.6.6' }, ['d1'])],
      notifications: [note('webhook', 'a1'), note('webhook', 'a1'), note('slack', 'a1')],
    });
    expect(grade.attacks[0]).toMatchObject({ caught: true, alerts: ['a1'], notifications: { webhook: 2, slack: 1 }, maxPerDestination: 2 });
    expect(grade.totals.recall).toEqual({ caught: 1, attacks: 1 });
    expect(grade.targets.every((target) => target.met)).toBe(true);
  });

  it('attributes alerts on the attack\'s other entities to it without counting them as caught', () => {
    const grade = gradeEvaluation([STUFFING], {
      detections: [detection('d1', { 'actor.userId': 'leaked1' }), detection('d2', { 'actor.userId': 'leaked2' })],
      alerts: [alert('a1', { 'actor.userId': 'leaked1' }, ['d1'], 'low'), alert('a2', { 'actor.userId': 'leaked2' }, ['d2'], 'low')],
      notifications: [],
    });
    expect(grade.attacks[0]?.caught).toBe(false);
    expect(grade.attacks[0]?.alerts).toEqual(['a1', 'a2']);
    expect(grade.targets[0]).toMatchObject({ met: false, detail: '0/1; missed: credential-stuffing' });
  });

  it('needs every value of a composite key, and ignores alerts outside the case\'s event-time interval', () => {
    const grade = gradeEvaluation([FLOOD], {
      detections: [detection('d1', { 'invocation.resource.api': 'identity-v2', 'invocation.route': '/v2/other' }), detection('d2', { 'invocation.resource.api': 'identity-v2', 'invocation.route': '/v2/sessions' }, '2026-01-01T12:00:00Z')],
      alerts: [alert('a1', { 'invocation.resource.api': 'identity-v2', 'invocation.route': '/v2/other' }, ['d1']), alert('a2', { 'invocation.resource.api': 'identity-v2', 'invocation.route': '/v2/sessions' }, ['d2'])],
      notifications: [],
    });
    expect(grade.attacks[0]).toMatchObject({ caught: false, alerts: [] });
    expect(grade.totals.unmatched).toBe(2);
  });

  it('attributes a roll-up alert to the attack through the keys of the detections it absorbed', () => {
    const grade = gradeEvaluation([FLOOD], {
      detections: [detection('d1', { 'client.ip': '1.0.0.1' }), detection('d2', { 'client.ip': '1.0.0.2' })],
      alerts: [alert('a1', { rule: 'authn-failures-per-ip' }, ['d1', 'd2'])],
      notifications: [],
    });
    expect(grade.attacks[0]?.alerts).toEqual(['a1']);
    expect(grade.totals.unmatched).toBe(0);
  });

  it('fails the one-incident and notification targets when a flood raises many alerts and pages', () => {
    const detections = ['1.0.0.1', '1.0.0.2', 'bob77'].map((value, n) => detection(`d${n}`, { key: value }));
    const alerts = detections.map((item, n) => alert(`a${n}`, item.key, [item.id], 'medium'));
    const grade = gradeEvaluation([FLOOD], { detections, alerts, notifications: alerts.map((item) => note('webhook', item.id)) });
    expect(grade.attacks[0]?.alerts).toHaveLength(3);
    expect(grade.targets[1]).toMatchObject({ met: false });
    expect(grade.targets[1]?.detail).toContain('the flood: 3');
    expect(grade.targets[2]).toMatchObject({ met: true });
    const paged = gradeEvaluation([FLOOD], { detections, alerts: alerts.slice(0, 1), notifications: [1, 2, 3, 4].map(() => note('webhook', 'a0')) });
    expect(paged.targets[2]).toMatchObject({ met: false, detail: 'most: 4; over: distributed-flood' });
  });

  it('counts a grouped notification naming several of one case\'s alerts once, and gives every destination a column', () => {
    const grade = gradeEvaluation([STUFFING], {
      detections: [detection('d1', { 'client.ip': '6.6.6.6' }), detection('d2', { 'actor.userId': 'leaked1' })],
      alerts: [alert('a1', { 'client.ip': '6.6.6.6' }, ['d1']), alert('a2', { 'actor.userId': 'leaked1' }, ['d2'])],
      notifications: [note('webhook', 'a1', 'a2')],
    });
    expect(grade.attacks[0]?.notifications).toEqual({ webhook: 1 });
    expect(grade.totals.notifications).toBe(1);
    const quiet = gradeEvaluation([STUFFING], { detections: [], alerts: [], notifications: [], destinations: ['pagerduty', 'webhook'] });
    expect(quiet.attacks[0]?.notifications).toEqual({ pagerduty: 0, webhook: 0 });
    expect(formatGrade(quiet)).toContain('notifications (pagerduty/webhook)');
  });

  it('fails the benign targets on a medium alert and on a page for a low one', () => {
    const medium = gradeEvaluation([NAT], {
      detections: [detection('d1', { 'client.ip': '7.7.7.7' }, '2026-01-01T10:10:00Z', 'high')],
      alerts: [alert('a1', { 'client.ip': '7.7.7.7' }, ['d1'], 'high')],
      notifications: [],
    });
    expect(medium.benign[0]?.bySeverity).toEqual({ low: 0, medium: 0, high: 1, critical: 0 });
    expect(medium.targets[3]).toMatchObject({ met: false, detail: '1 (shared-nat)' });
    const low = gradeEvaluation([NAT], {
      detections: [detection('d1', { 'actor.userId': 'staff1' }, '2026-01-01T10:10:00Z', 'low')],
      alerts: [alert('a1', { 'actor.userId': 'staff1' }, ['d1'], 'low')],
      notifications: [note('webhook', 'a1')],
    });
    expect(low.targets[3]).toMatchObject({ met: true });
    expect(low.targets[4]).toMatchObject({ met: false, detail: 'benign cases: 1, low alerts: 1' });
  });

  it('judges an alert whose detections are unknown by its key alone, and counts unmatched alerts by severity', () => {
    const grade = gradeEvaluation([STUFFING], {
      detections: [],
      alerts: [alert('a1', { 'client.ip': '6.6.6.6' }, ['gone']), alert('a2', { 'client.ip': '9.9.9.9' }, [], 'medium')],
      notifications: [],
    });
    expect(grade.attacks[0]?.caught).toBe(true);
    expect(grade.totals).toMatchObject({ alerts: 2, unmatched: 1, unmatchedBySeverity: { low: 0, medium: 1, high: 0, critical: 0 } });
  });

  it('prints stable recall and totals lines and a table with every case and target', () => {
    const grade = gradeEvaluation([STUFFING, FLOOD, NAT], {
      detections: [detection('d1', { 'client.ip': '6.6.6.6' })],
      alerts: [alert('a1', { 'client.ip': '6.6.6.6' }, ['d1'])],
      notifications: [note('on-call-webhook', 'a1')],
    });
    expect(recallLine(grade)).toBe('recall 1/2 (50%)');
    expect(totalsLine(grade)).toBe('totals detections 1 alerts 1 notifications 1 unmatched 0');
    const table = formatGrade(grade);
    for (const text of ['credential-stuffing', 'distributed-flood', 'shared-nat', 'notifications (on-call-webhook)', 'NOT MET every attack raises an incident', 'recall 1/2 (50%)']) expect(table).toContain(text);
  });
});

describe('formatEvaluation', () => {
  const result = (foldedLate: number): EvaluationResult => ({
    runId: 'eval-1-abc',
    seed: 1,
    mode: 'backlog',
    traffic: { events: 10, start: '2026-01-01T10:00:00.000Z', end: '2026-01-01T11:00:00.000Z', backgroundUsers: 2, backgroundEvents: 8, cases: [STUFFING] },
    grade: gradeEvaluation([STUFFING], { detections: [], alerts: [], notifications: [] }),
    pipeline: { indexed: 10, deadLettered: 0, late: 0, detections: 3, unpaged: 0, foldedLate },
    durationMs: 1000,
    indexPrefix: 'vigil',
  });

  it('says how many detections were folded out of event-time order, and warns that the grade then depends on read order', () => {
    const clean = formatEvaluation(result(0)).split('\n');
    expect(clean[0]).toContain('3 detections (0 folded out of event-time order, 0 alert changes too old to page)');
    expect(clean[1]).toBe('');
    const late = formatEvaluation(result(7)).split('\n');
    expect(late[0]).toContain('3 detections (7 folded out of event-time order,');
    expect(late[1]).toMatch(/^warning: 7 detections reached the alerter behind its watermark .* \(keep VIGIL_ALERT_LATENESS_MS at or above VIGIL_EVENT_TIME_SKEW_MS/);
  });
});
