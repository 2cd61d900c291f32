import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Correlator, DEFAULT_RULES_PATH, DetectionEngine, deleteKeysUnder, loadRuleSet, type DetectionInput, type RuleSet } from '../detectors';
import { correlate, decode, enrich, eventOfDocument, openGeoDatabase, type Decoded, type GeoLookup } from '../ingest';
import { createElasticsearch, createLogger, createRedis, loadConfig, requireConnections, secretsOf, type Config } from '../platform';
import { indexNames, type Detection } from '../schemas';

/** Options of {@link runReplay}. */
export interface ReplayOptions {
  /** NDJSON of events as they go into Kafka. */
  file?: string;
  /** Or an event-time range in Elasticsearch (ISO 8601 or date math such as now-1h). */
  from?: string;
  to?: string;
  /** Rule files and folders. @defaultValue the configured rules */
  rules?: string[];
  /** Value list files and folders, over the shipped lists. @defaultValue the configured lists (VIGIL_LISTS_PATH) */
  lists?: string[];
  /** Print at most this many detections per rule. @defaultValue 3 */
  show?: number;
  /** @defaultValue the configuration of the environment */
  config?: Config;
}

const BATCH = 500;

type Item = Pick<Decoded<unknown>, 'event' | 'enrichment'>;

/** The file's lines through the pipeline's own decode stage: a line it refuses is reported, not fatal. */
async function* fromFile(file: string, limits: Config['limits'], geoLookup: GeoLookup): AsyncGenerator<Item | { line: number; problem: string }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    // No time-range check (as documented): a file of events dated next week, or 1999, is replayed;
    // against the wall clock every such line was refused and the run reported 0 events.
    const { decoded, refused } = decode([{ value: Buffer.from(text) }], { limits, family: undefined, now: undefined, geoLookup });
    const [problem] = refused;
    if (problem) yield { line, problem: `${problem.reasonCode}: ${problem.reason}` };
    else if (decoded[0]) yield decoded[0];
  }
}

/**
 * Runs a rule set over stored events and reports what would have fired, per rule. No side
 * effects: state lives under a throwaway Redis prefix deleted at the end, nothing is indexed or
 * published. The clock is the events' own time, so history replays as it happened; the same
 * input replayed twice gives the same detection ids.
 */
export async function runReplay(options: ReplayOptions): Promise<number> {
  const { detections, events, refused, rebuilt, inexact, ruleSet } = await replayDetections(options);
  const byRule = new Map<string, Detection[]>();
  for (const detection of detections) byRule.set(detection.ruleId, [...(byRule.get(detection.ruleId) ?? []), detection]);
  const stored = options.file ? '' : `, ${rebuilt} rebuilt from their document's fields${inexact ? `, ${inexact} of them not matching their content hash` : ''}`;
  console.log(`replay: ${events} events${refused ? ` (${refused} refused)` : ''}${stored}, ${ruleSet.rules.length} rules (digest ${ruleSet.digest}), ${detections.length} detections`);
  for (const compiled of ruleSet.rules) {
    const found = byRule.get(compiled.rule.id) ?? [];
    console.log(`  ${String(found.length).padStart(5)}  ${compiled.rule.id}`);
    for (const detection of found.slice(0, options.show ?? 3)) console.log(`           ${detection.id}  ${detection.reason}`);
  }
  return 0;
}

/** The replay itself, without printing: what would have fired. */
export async function replayDetections(options: ReplayOptions): Promise<{ detections: Detection[] } & ReplayCounts> {
  const detections: Detection[] = [];
  const replayed = await replayBatches(options, (_inputs, found) => {
    detections.push(...found);
  });
  return { detections, ...replayed };
}

/** What a replay read. */
export interface ReplayCounts {
  /** Events replayed. */
  events: number;
  /** Lines or documents that gave no valid event. */
  refused: number;
  /** Of the events read from Elasticsearch, those rebuilt from the document (no `event.original`). */
  rebuilt: number;
  /** Of those, the ones whose content hash isn't the document's `vigil.content_hash`. */
  inexact: number;
  ruleSet: RuleSet;
}

/**
 * Reads the events (a file, or a time range in Elasticsearch), runs them through correlation and
 * the rule set batch by batch, and hands each batch's detection inputs and detections to
 * `onBatch`: what `vigil replay` and `vigil rules coverage` both read events with. A stored
 * event is its document's `event.original` when it has one, else rebuilt from the document's
 * fields (`eventOfDocument`), then enriched as the pipeline enriches.
 */
export async function replayBatches(
  options: ReplayOptions,
  onBatch: (inputs: readonly DetectionInput[], detections: readonly Detection[], ruleSet: RuleSet) => void,
): Promise<ReplayCounts> {
  const config = options.config ?? loadConfig();
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, secrets: secretsOf(config) });
  const ruleSet = loadRuleSet(options.rules ?? config.detection.rulesPaths ?? [DEFAULT_RULES_PATH], { lists: options.lists ?? config.detection.listsPaths ?? [] });
  const redis = createRedis(config, logger.child({ component: 'redis' }));
  // Under the configured prefix: a Redis user allowed only `~<prefix>:*` may write it.
  const prefix = `${config.redis.prefix}:replay-${randomBytes(6).toString('hex')}`;
  try {
    await requireConnections(config, { redis });
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const engine = new DetectionEngine({ redis, rules: ruleSet, keyPrefix: prefix, clock: 'watermark', allowedLatenessMs: config.detection.allowedLatenessMs, stateGraceMs: config.detection.stateGraceMs, logger });
  // Correlation runs as in the pipeline, on the same throwaway prefix, with no wait: a replayed
  // request's decisions are either in the input or never coming.
  const correlator = new Correlator({ redis, prefix, waitMs: 0 });
  // The pipeline's database, so a replay locates events as the pipeline does; no reload in a batch run.
  const { lookup: geoLookup } = await openGeoDatabase(config.geo.database, { watch: false });
  let events = 0;
  let refused = 0;
  let rebuilt = 0;
  let inexact = 0;
  try {
    let items: Item[] = [];
    const flush = async (): Promise<void> => {
      if (items.length === 0) return;
      const { inputs } = await correlate(items, { correlator, detecting: true });
      onBatch(inputs, await engine.evaluateBatch(inputs), ruleSet);
      items = [];
    };
    if (options.file) {
      for await (const item of fromFile(options.file, config.limits, geoLookup)) {
        if ('problem' in item) {
          refused++;
          console.error(`${options.file}:${item.line}: skipped, ${item.problem}`);
          continue;
        }
        events++;
        items.push(item);
        if (items.length >= BATCH) await flush();
      }
    } else {
      const elasticsearch = createElasticsearch(config);
      let after: (string | number)[] | undefined;
      for (;;) {
        const page = await elasticsearch.search({
          index: indexNames(config.indices.prefix).eventPattern,
          size: BATCH,
          sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
          query: { range: { '@timestamp': { gte: options.from, lte: options.to } } },
          // What the pipeline added and replay computes again is left out.
          _source_excludes: ['vigil.correlation', 'vigil.kafka', 'related', 'event.ingested'],
          ...(after ? { search_after: after } : {}),
        });
        const hits = page.hits.hits;
        for (const hit of hits) {
          const stored = eventOfDocument(hit._source);
          if (!stored.ok) {
            refused++;
            console.error(`${hit._index}/${hit._id ?? ''}: skipped, ${stored.reason}`);
            continue;
          }
          events++;
          if (stored.from === 'rebuilt') {
            rebuilt++;
            if (stored.hashMatches === false) inexact++;
          }
          items.push({ event: stored.event, enrichment: enrich(stored.event, geoLookup) });
        }
        await flush();
        if (hits.length < BATCH) break;
        after = hits[hits.length - 1]?.sort as (string | number)[] | undefined;
      }
    }
    await flush();
  } finally {
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  }

  return { events, refused, rebuilt, inexact, ruleSet };
}

