import { runEvaluation, formatEvaluation, type EvaluationResult } from '../../scripts/evaluate/run';
import { isolatedEnv } from '../support/harness';

/**
 * The evaluator end to end, and the targets of issue 9: labelled traffic (scaled down, the
 * 800-IP flood kept) through the real pipeline and alerter, graded. The figures are printed so a
 * failure shows the whole table.
 */
describe('vigil evaluate: labelled attacks and benign cases through the real pipeline', () => {
  let result: EvaluationResult;

  beforeAll(async () => {
    result = await runEvaluation({
      seed: 20_260_301,
      users: 100,
      requestsPerUser: 15,
      volume: 0.3,
      floodSources: 800,
      // The alerter's lateness at the default, the pipeline's event-time skew: the harness's
      // 500 ms (for tests that want alerts at once) is below the skew, the set-up `vigil run`
      // warns about. With it, dozens of detections folded out of event-time order in every run,
      // and whether the flood's per-IP detections were absorbed by its alert hung on which
      // partition the alerter read first (7 alerts for the flood in one CI run in four).
      env: { ...process.env, ...isolatedEnv({ VIGIL_ALERT_LATENESS_MS: '60000', VIGIL_EVENT_TIME_SKEW_MS: '60000' }) },
      isolate: false,
      timeoutMs: 360_000,
    });
    process.stdout.write(`${formatEvaluation(result)}\n`);
  }, 420_000);

  it('took every event in, folded every detection in event-time order, and graded every case', () => {
    expect(result.pipeline.indexed).toBe(result.traffic.events);
    expect(result.pipeline.foldedLate).toBe(0);
    expect(result.grade.attacks).toHaveLength(9);
    expect(result.grade.benign).toHaveLength(7);
  });

  it('raises an incident on the right key for every attack (recall 100%)', () => {
    const missed = result.grade.attacks.filter((grade) => !grade.caught).map((grade) => grade.case.id);
    expect(missed).toEqual([]);
  });

  it('raises one incident per attack: the 800-IP flood at most 2 alerts, every attack at most 2', () => {
    const flood = result.grade.attacks.find((grade) => grade.case.id === 'distributed-flood');
    expect(flood?.alerts.length).toBeLessThanOrEqual(2);
    const over = result.grade.attacks.filter((grade) => grade.alerts.length > 2).map((grade) => `${grade.case.id}: ${grade.alerts.length}`);
    expect(over).toEqual([]);
  });

  it('sends at most 3 notifications per destination about any attack', () => {
    const over = result.grade.attacks.filter((grade) => grade.maxPerDestination > 3).map((grade) => `${grade.case.id}: ${JSON.stringify(grade.notifications)}`);
    expect(over).toEqual([]);
  });

  it('raises the brute force then takeover as one incident: the takeover is keyed on its victim and joins the victim\'s incident', () => {
    const takeover = result.grade.attacks.find((grade) => grade.case.id === 'brute-force-takeover');
    expect(takeover?.alerts).toHaveLength(1);
    expect(takeover?.rules).toContain('account-takeover-sequence');
  });

  it('raises no alert of medium severity or above on the benign cases, and pages nobody for them or for low signals', () => {
    const raised = result.grade.benign.filter((grade) => grade.bySeverity.medium + grade.bySeverity.high + grade.bySeverity.critical > 0).map((grade) => `${grade.case.id}: ${JSON.stringify(grade.bySeverity)}`);
    expect(raised).toEqual([]);
    const paged = result.grade.benign.filter((grade) => grade.maxPerDestination > 0).map((grade) => grade.case.id);
    expect(paged).toEqual([]);
    expect(result.grade.targets.filter((target) => !target.met).map((target) => target.target)).toEqual([]);
  });
});
