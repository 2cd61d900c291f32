/**
 * Risk-based alerting (docs/risk.md). Every detection adds points, by its severity, to the risk
 * score of each entity in its key (a user, a consumer, an IP); scores decay exponentially with
 * event time. Low-fidelity signals (a new device, a new country) do not page on their own: they
 * page when an entity's combined risk crosses the threshold, as one `risk-threshold` detection on
 * that entity whose reason lists what added up. The scores live in Redis (riskAdd-2, one round
 * trip per batch), so every alerter instance shares them and they survive restarts.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../../platform';
import type { Detection, Severity } from '../../schemas';
import { StoreUnavailableError, createLogger, type Config, type Logger } from '../../platform';
import { MAX_BATCH_ITEMS, defineScripts, riskKeys, roundTrip, type ScriptItem } from '../state';
import { SEVERITY_RANK } from './grouping-policy';

/** The rule id of the detections the scorer synthesizes. */
export const RISK_RULE_ID = 'risk-threshold';
/** The tags of a `risk-threshold` detection, as destinations may route on them. */
export const RISK_TAGS: readonly string[] = ['risk'];
/** The key fields that name an entity, and the entity kind each names (in Redis keys and docs). */
export const RISK_ENTITY_FIELDS = { 'actor.userId': 'user', 'actor.consumerId': 'consumer', 'client.ip': 'ip' } as const;
export type RiskEntityField = keyof typeof RISK_ENTITY_FIELDS;
/** Contributors kept per entity (the oldest is dropped beyond it). */
export const RISK_MAX_CONTRIBUTORS = 50;
/** A contribution decayed below this share of the threshold is left out of a reason. */
const NEGLIGIBLE = 0.005;

/** How risk is scored: `config.risk`, in the shape the scorer takes. */
export interface RiskSettings {
  /** Score at which an entity raises a `risk-threshold` detection. */
  threshold: number;
  /** Event time in which a score halves. */
  halfLifeMs: number;
  /** Points per detection severity. */
  scores: Readonly<Record<Severity, number>>;
  /** The least severity that pages on its own; less severe detections only add to risk. */
  pagingSeverity: Severity;
  /** Severity of a `risk-threshold` detection. */
  severity: Severity;
}

/** The scorer's settings from the configuration (`VIGIL_RISK_*`). */
export function riskSettingsOf(config: Pick<Config, 'risk'>): RiskSettings {
  const { risk } = config;
  return {
    threshold: risk.threshold,
    halfLifeMs: risk.halfLifeMs,
    scores: { low: risk.scoreLow, medium: risk.scoreMedium, high: risk.scoreHigh, critical: risk.scoreCritical },
    pagingSeverity: risk.pagingSeverity,
    severity: risk.severity,
  };
}

/** An entity a detection is about. */
export interface RiskEntity {
  field: RiskEntityField;
  value: string;
}

/** One detection's part in an entity's score. */
export interface RiskContribution {
  detectionId: string;
  ruleId: string;
  /** Points it added, at its own event time. */
  points: number;
  /** Its event time (ms). */
  time: number;
}

/** An entity's score as stored, and its contributors. */
export interface RiskScore {
  entity: RiskEntity;
  /** The score decayed to the time asked for. */
  score: number;
  /** Whether the entity is at or over the threshold since it last crossed. */
  above: boolean;
  contributions: readonly RiskContribution[];
}

/** The entities of a detection: the user, consumer and IP fields of its key, in that order. */
export function entitiesOf(detection: Pick<Detection, 'key'>): RiskEntity[] {
  return (Object.keys(RISK_ENTITY_FIELDS) as RiskEntityField[])
    .filter((field) => typeof detection.key[field] === 'string' && detection.key[field] !== '')
    .map((field) => ({ field, value: detection.key[field] as string }));
}

/** A score of `score` at `fromMs`, decayed to `toMs` (no growth backwards: a later `fromMs` keeps the score). */
export function decayedScore(score: number, fromMs: number, toMs: number, halfLifeMs: number): number {
  if (toMs <= fromMs) return score;
  return score * 0.5 ** ((toMs - fromMs) / halfLifeMs);
}

/** Parses a contributor as riskAdd-2 stores it: `<time>|<points>|<rule id>`. */
export function parseContribution(detectionId: string, stored: string): RiskContribution {
  const [time, points, ...rule] = stored.split('|');
  return { detectionId, ruleId: rule.join('|'), points: Number(points), time: Number(time) };
}

const round = (value: number): number => Math.round(value * 10) / 10;

/**
 * The detection an entity raises when its risk crosses the threshold: deterministic (its id is a
 * hash of the entity and the detection that crossed, so a redone batch yields the same one),
 * keyed on the entity, its reason listing the rules that added up with their points decayed to
 * the crossing, strongest first; `eventIds` are the contributing detections' ids.
 */
export function riskDetection(entity: RiskEntity, crossing: Detection, score: number, contributions: readonly RiskContribution[], settings: RiskSettings): Detection {
  const at = Date.parse(crossing.time);
  const counted = contributions
    .map((contribution) => ({ ...contribution, now: decayedScore(contribution.points, contribution.time, at, settings.halfLifeMs) }))
    .filter((contribution) => contribution.now >= settings.threshold * NEGLIGIBLE)
    .sort((left, right) => right.now - left.now || left.time - right.time || left.detectionId.localeCompare(right.detectionId));
  const byRule = new Map<string, { points: number; count: number }>();
  for (const contribution of counted) {
    const rule = byRule.get(contribution.ruleId) ?? { points: 0, count: 0 };
    byRule.set(contribution.ruleId, { points: rule.points + contribution.now, count: rule.count + 1 });
  }
  const parts = [...byRule]
    .sort((left, right) => right[1].points - left[1].points || left[0].localeCompare(right[0]))
    .map(([ruleId, rule]) => `${ruleId} ${round(rule.points)}${rule.count > 1 ? ` (${rule.count} detections)` : ''}`);
  const kind = RISK_ENTITY_FIELDS[entity.field];
  const start = Math.min(at, ...counted.map((contribution) => contribution.time));
  const id = createHash('sha256').update(`${RISK_RULE_ID}|${entity.field}=${entity.value}|${crossing.id}`).digest('hex').slice(0, 32);
  return {
    id: `risk-${id}`,
    ruleId: RISK_RULE_ID,
    ruleVersion: 1,
    ruleName: 'Entity risk over its threshold',
    ruleType: 'risk',
    severity: settings.severity,
    tags: [...RISK_TAGS],
    reasonCode: 'risk_threshold_crossed',
    reason: `${kind} ${entity.value} reached risk ${round(score)} (threshold ${settings.threshold}) from ${counted.length} detection${counted.length === 1 ? '' : 's'}: ${parts.join(', ')}.`,
    key: { [entity.field]: entity.value },
    observedValue: round(score),
    threshold: settings.threshold,
    window: { start: new Date(start).toISOString(), end: new Date(at).toISOString(), durationMs: at - start },
    eventIds: counted.map((contribution) => contribution.detectionId),
    time: crossing.time,
    detectedAt: crossing.detectedAt,
    degraded: false,
  };
}

/** Options of {@link createRiskScorer}. */
export interface RiskScorerOptions {
  redis: RedisClient;
  /** `config.redis.prefix`. */
  prefix: string;
  /** From {@link riskSettingsOf}. */
  settings: RiskSettings;
  /** The scorer names its child logger (`component: 'risk'`). @defaultValue a silent logger */
  logger?: Logger;
}

/** Scores detections per entity and decides what pages. */
export interface RiskScorer {
  /**
   * Adds every detection to its entities' scores (one Redis round trip per 256 items) and returns
   * what should be grouped into alerts: the detections at or above the paging severity as they
   * are, and one `risk-threshold` detection per entity whose score a detection below the paging
   * severity took over the threshold, in its place (a paging detection that crosses pages already). `risk-threshold` detections given back in pass
   * through without adding. A detection's time is capped at `eventTimeNowMs`, so an event stamped
   * in the future cannot age an entity's score.
   * @throws StoreUnavailableError when Redis cannot be reached (retriable: redo the batch; counted detections add nothing twice)
   */
  triage(detections: readonly Detection[], eventTimeNowMs: number): Promise<readonly Detection[]>;
  /** An entity's score decayed to `atMs`, its state and contributors; undefined when it has none. */
  scoreOf(entity: RiskEntity, atMs: number): Promise<RiskScore | undefined>;
}

/** Creates a risk scorer; see the module comment and docs/risk.md. */
export function createRiskScorer(options: RiskScorerOptions): RiskScorer {
  const { redis, prefix, settings } = options;
  const log = (options.logger ?? createLogger({ level: 'silent' })).child({ component: 'risk' });
  defineScripts(redis);
  const ttlMs = Math.min(10 * settings.halfLifeMs, 365 * 86_400_000);
  const keysOf = (entity: RiskEntity) => riskKeys(prefix, RISK_ENTITY_FIELDS[entity.field], entity.value);

  return {
    async triage(detections, eventTimeNowMs) {
      const items: { detection: Detection; entity: RiskEntity; item: ScriptItem }[] = [];
      for (const detection of detections) {
        if (detection.ruleId === RISK_RULE_ID) continue;
        const parsed = Date.parse(detection.time);
        const time = Math.round(Number.isFinite(parsed) ? Math.min(parsed, eventTimeNowMs) : eventTimeNowMs);
        const points = settings.scores[detection.severity];
        for (const entity of entitiesOf(detection)) {
          const keys = keysOf(entity);
          items.push({
            detection,
            entity,
            item: {
              keys: [keys.score, keys.contributors],
              args: [detection.id, time, points, detection.ruleId, settings.halfLifeMs, settings.threshold, ttlMs, RISK_MAX_CONTRIBUTORS],
            },
          });
        }
      }
      const calls = [];
      for (let start = 0; start < items.length; start += MAX_BATCH_ITEMS) {
        calls.push({ script: 'riskAdd' as const, items: items.slice(start, start + MAX_BATCH_ITEMS).map((entry) => entry.item) });
      }
      const replies = await roundTrip(redis, calls, { operation: 'risk scores' });
      const crossings = new Map<Detection, Detection[]>();
      replies.forEach((reply, call) => {
        if (!reply.ok) throw new StoreUnavailableError('redis', `risk scores: ${reply.error.message}`, reply.error);
        (reply.value as unknown[]).forEach((itemReply, position) => {
          const entry = items[call * MAX_BATCH_ITEMS + position];
          if (entry === undefined) return;
          if (itemReply instanceof Error) throw new StoreUnavailableError('redis', `risk scores: ${itemReply.message}`, itemReply);
          const [score, , crossed, , ...contributors] = itemReply as [string, number, number, number, ...string[]];
          if (Number(crossed) !== 1) return;
          const contributions: RiskContribution[] = [];
          for (let index = 0; index + 1 < contributors.length; index += 2) contributions.push(parseContribution(String(contributors[index]), String(contributors[index + 1])));
          const synthesized = riskDetection(entry.entity, entry.detection, Number(score), contributions, settings);
          crossings.set(entry.detection, [...(crossings.get(entry.detection) ?? []), synthesized]);
          log.info({ entity: `${entry.entity.field}=${entry.entity.value}`, score: synthesized.observedValue, detectionId: synthesized.id }, 'entity risk crossed its threshold');
        });
      });
      const paging = SEVERITY_RANK[settings.pagingSeverity];
      // A crossing pages only when a signal that does not page on its own made it: a paging
      // detection that takes its entity over the threshold pages already, in its own alert, and
      // a risk detection beside it would only be one more notification about the same incident.
      return detections.flatMap((detection) => {
        const pages = detection.ruleId === RISK_RULE_ID || SEVERITY_RANK[detection.severity] >= paging;
        return pages ? [detection] : [detection, ...(crossings.get(detection) ?? [])].slice(1);
      });
    },

    async scoreOf(entity, atMs) {
      const keys = keysOf(entity);
      let stored: [Error | null, unknown][] | null;
      try {
        stored = await redis.pipeline().hmget(keys.score, 'score', 'at', 'above').hgetall(keys.contributors).exec();
      } catch (error) {
        throw new StoreUnavailableError('redis', 'risk scores: could not read an entity', error);
      }
      const [score, at, above] = (stored?.[0]?.[1] ?? []) as (string | null)[];
      if (score === null || score === undefined || at === null || at === undefined) return undefined;
      const contributors = (stored?.[1]?.[1] ?? {}) as Record<string, string>;
      const now = decayedScore(Number(score), Number(at), atMs, settings.halfLifeMs);
      return {
        entity,
        score: now,
        // The stored mark is re-armed at the next detection; decayed below the threshold, it is re-armed already.
        above: above === '1' && now >= settings.threshold,
        contributions: Object.entries(contributors)
          .map(([detectionId, text]) => parseContribution(detectionId, text))
          .sort((left, right) => left.time - right.time || left.detectionId.localeCompare(right.detectionId)),
      };
    },
  };
}
