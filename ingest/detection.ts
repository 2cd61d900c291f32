import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Correlator, DetectionEngine, loadRuleSet, watchRules, type Correlated, type DetectionInput, type InputGeo, type RuleSet } from '../detectors';
import type { VigilEvent } from '../schemas';
import type { Config, Logger } from '../platform';
import type { Enrichment } from './enrich';

/** The rule pack shipped with Vigil, on by default. */
export const DEFAULT_RULES_PATH = join(__dirname, '..', 'detectors', 'rules', 'default');

/** What the detectors see of an enriched event (and what correlation found, if anything). */
export function toDetectionInput(event: VigilEvent, enrichment: Enrichment, correlated?: Correlated): DetectionInput {
  // Built field by field: this runs for every event, and optional fields stay absent, not undefined.
  const input: DetectionInput = { event };
  if (enrichment.ipScope) input.ipScope = enrichment.ipScope;
  const geo = enrichment.geo;
  if (geo) {
    const seen: InputGeo = {};
    if (geo.location) {
      seen.lat = geo.location.lat;
      seen.lon = geo.location.lon;
    }
    if (enrichment.accuracyKm !== undefined) seen.accuracyKm = enrichment.accuracyKm;
    if (geo.country_iso_code) seen.country = geo.country_iso_code;
    if (geo.city_name) seen.city = geo.city_name;
    input.geo = seen;
  }
  if (correlated) input.correlated = correlated;
  return input;
}

/** A Redis client for rule state: fails fast when Redis is away, so the partition pauses instead of hanging. */
export function createRedis(config: Config): Redis {
  return new Redis(config.redis.url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    lazyConnect: false,
  });
}

/** A running engine with its rule watcher. */
export interface DetectionRuntime {
  engine: DetectionEngine;
  /** Correlation on the same Redis (request view, session device), for the pipeline. */
  correlator: Correlator;
  ruleSet: RuleSet;
  close(): Promise<void>;
}

/**
 * Loads the configured rules (refusing to start on a bad set), builds the engine and, when
 * configured, watches the rule files and swaps in each valid new set.
 */
export function createDetectionRuntime(config: Config, logger: Logger, options: { redis?: Redis; clock?: 'wall' | 'watermark' } = {}): DetectionRuntime {
  const paths = config.detection.rulesPaths ?? [DEFAULT_RULES_PATH];
  const ruleSet = loadRuleSet(paths);
  const redis = options.redis ?? createRedis(config);
  const log = logger.child({ component: 'detectors' });
  const engine = new DetectionEngine({
    redis,
    rules: ruleSet,
    keyPrefix: config.redis.prefix,
    allowedLatenessMs: config.detection.allowedLatenessMs,
    clock: options.clock ?? 'wall',
    logger: log,
  });
  const stopWatching = config.detection.watch ? watchRules(paths, (next) => engine.setRules(next), log) : () => undefined;
  log.info({ rules: ruleSet.rules.map((compiled) => compiled.rule.id), digest: ruleSet.digest }, 'detection rules loaded');
  return {
    engine,
    correlator: new Correlator({ redis, prefix: config.redis.prefix, waitMs: config.detection.correlationWaitMs }),
    ruleSet,
    async close() {
      stopWatching();
      if (!options.redis) await redis.quit().catch(() => undefined);
    },
  };
}
