import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { errors as esErrors, type Client } from '@elastic/elasticsearch';
import { z } from 'zod';
import { ConnectionError, VigilError, createElasticsearch, loadConfig, urlWithoutCredentials, type Config } from '../platform';
import { alertIndexNames, detectionIndexNames, indexNames } from '../schemas';
import { calendarDate } from './cli-text';
import { cutLists, renderReport } from './report-html';
import type { ReportData, ReportDosIncident, ReportEvidence, ReportIncident, ReportPlace, ReportRange, ReportTravelPair } from './report-data';

/** Options of {@link runReport}. */
export interface ReportOptions {
  /** Start of the range: ISO 8601, or `now`, `now-15m`, `now-2h`, `now-1d`. */
  from: string;
  /** End of the range, in the same forms. */
  to: string;
  /** The HTML file to write (its folder is created). */
  out: string;
}

/** A time the CLI was given that is neither ISO 8601 nor `now[-N(s|m|h|d)]`. */
export class ReportRangeError extends VigilError {
  constructor(message: string) {
    super(message, { code: 'report_range', retriable: false });
  }
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Resolves `now`, `now-15m` or an ISO 8601 time against `now`. */
export function parseReportTime(text: string, now: Date): Date {
  const relative = /^now(?:-(\d{1,6})([smhd]))?$/.exec(text.trim());
  if (relative) return new Date(now.getTime() - (relative[1] ? Number(relative[1]) * (UNIT_MS[relative[2] ?? 's'] ?? 1000) : 0));
  // A date-time needs its zone: Date.parse reads one without as the host's local time, so the same
  // command covered other hours on a host not set to UTC (and `vigil deadletters` refused it).
  const trimmed = text.trim();
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(trimmed)) throw new ReportRangeError(`"${text}" has no zone: add one (${trimmed}Z for UTC, or +02:00); a time without would be read in this host's zone`);
  // Date.parse moves a date that does not exist (2026-02-30, T24:00) to the next day or month: refused.
  const parsed = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2}))?$/.test(trimmed) && calendarDate(trimmed) ? Date.parse(trimmed) : NaN;
  if (Number.isNaN(parsed)) throw new ReportRangeError(`"${text}" is not a time: use ISO 8601 with a zone (2026-05-01T10:00:00Z, or a date: 2026-05-01) or now, now-15m, now-2h, now-1d`);
  return new Date(parsed);
}

/** The range from two CLI times; `from` must come before `to`. */
export function parseReportRange(from: string, to: string, now = new Date()): ReportRange {
  const range = { from: parseReportTime(from, now), to: parseReportTime(to, now) };
  if (range.from.getTime() >= range.to.getTime()) throw new ReportRangeError(`--from (${range.from.toISOString()}) must be before --to (${range.to.toISOString()})`);
  return range;
}

/** The bucket width that gives at most about 120 buckets over the range. */
export function timelineInterval(range: ReportRange): number {
  const span = range.to.getTime() - range.from.getTime();
  const steps = [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 3 * 3_600_000, 12 * 3_600_000, 86_400_000, 7 * 86_400_000];
  return steps.find((step) => span / step <= 120) ?? steps[steps.length - 1] ?? 86_400_000;
}

// --- what Elasticsearch returns, checked at the edge -------------------------------------------

const stringRecord = z.record(z.string(), z.unknown()).transform((value) => Object.fromEntries(Object.entries(value).map(([key, item]) => [key, String(item)])));
const asList = z.union([z.array(z.string()), z.string().transform((value) => [value])]);

const alertSource = z.looseObject({
  kibana: z.looseObject({
    alert: z.looseObject({
      uuid: z.string(),
      status: z.string(),
      severity: z.string(),
      reason: z.string().default(''),
      start: z.string(),
      end: z.string().optional(),
      last_detected: z.string(),
      rule: z.looseObject({ uuid: asList.default([]) }).default({ uuid: [] }),
    }),
  }),
  vigil: z.looseObject({
    alert: z.looseObject({
      title: z.string(),
      key: stringRecord.default({}),
      count: z.number(),
      detections: asList.default([]),
      // Every contributing rule (kibana.alert.rule.uuid holds only the one that opened it).
      rules: asList.optional(),
    }),
  }),
});

const placeSource = z
  .looseObject({
    location: z.looseObject({ lat: z.number(), lon: z.number() }).optional(),
    country_iso_code: z.string().optional(),
    city_name: z.string().optional(),
    ip: z.string().optional(),
    time: z.string().optional(),
  })
  .default({});

const detectionSource = z.looseObject({
  '@timestamp': z.string(),
  message: z.string().default(''),
  rule: z.looseObject({ id: z.string(), name: z.string().default('') }),
  vigil: z.looseObject({
    detection: z.looseObject({
      severity: z.string().default(''),
      key: stringRecord.default({}),
      observed_value: z.number().optional(),
      threshold: z.number().optional(),
      window: z.looseObject({ start: z.string().optional(), end: z.string().optional() }).default({}),
      distinct_field: z.string().optional(),
      distinct_values: asList.default([]),
      event_ids: asList.default([]),
      geo: z.looseObject({ from: placeSource, to: placeSource, distance_km: z.number().optional(), speed_kmh: z.number().optional() }).optional(),
    }),
  }),
});

type DetectionSource = z.infer<typeof detectionSource>;

const bucketsOf = z.object({ buckets: z.array(z.looseObject({ key: z.union([z.string(), z.number()]), doc_count: z.number() })) });

/** Parses one aggregation with a schema; a shape Elasticsearch never sends is a bug, said plainly. */
function aggregation<S extends z.ZodType>(aggregations: unknown, name: string, schema: S): z.output<S> {
  const parsed = schema.safeParse((aggregations as Record<string, unknown> | undefined)?.[name]);
  if (!parsed.success) throw new Error(`report: unexpected shape of aggregation ${name}: ${parsed.error.message}`);
  return parsed.data;
}

const LENIENT = { ignore_unavailable: true, allow_no_indices: true } as const;

/** A search's hit count, as `track_total_hits` gives it. */
function hitCount(total: number | { value: number } | undefined): number {
  return typeof total === 'number' ? total : (total?.value ?? 0);
}
/** At most this many incidents, each with at most this much evidence, and DoS charts. */
const MAX_INCIDENTS = 200;
const MAX_EVIDENCE = 10;
const MAX_DOS = 10;
const MAX_TRAVEL = 200;
/** Rules drawn on the timeline (those with most detections); the report says when there were more. */
const MAX_TIMELINE_RULES = 30;

function toEvidence(id: string, source: DetectionSource): ReportEvidence {
  const detection = source.vigil.detection;
  return {
    id,
    time: source['@timestamp'],
    ruleId: source.rule.id,
    ruleName: source.rule.name,
    severity: detection.severity,
    sentence: source.message,
    ...(detection.observed_value === undefined ? {} : { observedValue: detection.observed_value }),
    ...(detection.threshold === undefined ? {} : { threshold: detection.threshold }),
    ...(detection.window.start ? { windowStart: detection.window.start } : {}),
    ...(detection.window.end ? { windowEnd: detection.window.end } : {}),
    key: detection.key,
    ...(detection.distinct_field ? { distinctField: detection.distinct_field } : {}),
    distinctValues: detection.distinct_values,
    eventIds: detection.event_ids,
  };
}

function place(side: z.infer<typeof placeSource>): ReportPlace {
  return {
    ...(side.time ? { time: side.time } : {}),
    ...(side.city_name ? { city: side.city_name } : {}),
    ...(side.country_iso_code ? { country: side.country_iso_code } : {}),
    ...(side.ip ? { ip: side.ip } : {}),
    ...(side.location ? { lat: side.location.lat, lon: side.location.lon } : {}),
  };
}

/**
 * Reads what a report shows from Elasticsearch: the alerts (incidents) that were active in the
 * range with their detections, the detections by rule over time, the entities with most
 * detections, the traffic of each DoS incident's endpoint, and the impossible-travel pairs.
 * Only Vigil's own fields are queried (`vigil.*`, `kibana.alert.*`, `rule.id`, `@timestamp`).
 */
export async function collectReport(elasticsearch: Client, config: Config, range: ReportRange, now = new Date()): Promise<ReportData> {
  const prefix = config.indices.prefix;
  const detections = detectionIndexNames(prefix).pattern;
  const alerts = alertIndexNames(prefix).index;
  const invocations = indexNames(prefix).eventsOf('invocation');
  const inRange = { range: { '@timestamp': { gte: range.from.toISOString(), lte: range.to.toISOString() } } };
  const intervalMs = timelineInterval(range);

  const overview = await elasticsearch.search({
    index: detections,
    ...LENIENT,
    size: 0,
    track_total_hits: true,
    query: inRange,
    aggs: {
      rules: {
        terms: { field: 'rule.id', size: MAX_TIMELINE_RULES },
        aggs: {
          over_time: {
            date_histogram: {
              field: '@timestamp',
              fixed_interval: `${intervalMs / 1000}s`,
              min_doc_count: 0,
              extended_bounds: { min: range.from.getTime(), max: range.to.getTime() },
            },
          },
        },
      },
      rule_count: { cardinality: { field: 'rule.id' } },
      entities: {
        terms: { field: 'vigil.detection.key_text', size: 10 },
        aggs: { rules: { terms: { field: 'rule.id', size: 5 } }, last: { max: { field: '@timestamp' } } },
      },
    },
  });
  const total = hitCount(overview.hits.total);
  const rules = aggregation(
    overview.aggregations,
    'rules',
    z.object({ buckets: z.array(z.object({ key: z.string(), over_time: bucketsOf })) }).default({ buckets: [] }),
  ).buckets;
  // Every rule's histogram has the same extended bounds, so the first one's keys are the axis.
  const axis = (rules[0]?.over_time.buckets ?? []).map((bucket) => new Date(Number(bucket.key)).toISOString());
  const timeline = { intervalMs, buckets: axis, series: rules.map((rule) => ({ ruleId: rule.key, counts: rule.over_time.buckets.map((bucket) => bucket.doc_count) })) };
  const entities = aggregation(
    overview.aggregations,
    'entities',
    z.object({ buckets: z.array(z.object({ key: z.string(), doc_count: z.number(), rules: bucketsOf, last: z.object({ value_as_string: z.string().optional() }) })) }).default({ buckets: [] }),
  ).buckets.map((bucket) => ({ key: bucket.key, detections: bucket.doc_count, rules: bucket.rules.buckets.map((rule) => String(rule.key)), last: bucket.last.value_as_string ?? '' }));
  const ruleCount = aggregation(overview.aggregations, 'rule_count', z.object({ value: z.number() }).default({ value: 0 })).value;

  // Incidents: alerts whose life overlaps the range: started by its end, and ended after its start
  // or not ended (an alert still active, however long quiet). The newest, shown oldest first.
  const alertPage = await elasticsearch.search({
    index: alerts,
    ...LENIENT,
    size: MAX_INCIDENTS,
    track_total_hits: true,
    sort: [{ 'kibana.alert.start': 'desc' }],
    query: {
      bool: {
        filter: [
          { range: { 'kibana.alert.start': { lte: range.to.toISOString() } } },
          { bool: { should: [{ range: { 'kibana.alert.end': { gte: range.from.toISOString() } } }, { bool: { must_not: { exists: { field: 'kibana.alert.end' } } } }], minimum_should_match: 1 } },
        ],
      },
    },
  });
  const incidentTotal = hitCount(alertPage.hits.total);
  const parsedAlerts = alertPage.hits.hits
    .flatMap((hit) => {
      const parsed = alertSource.safeParse(hit._source);
      return parsed.success ? [parsed.data] : [];
    })
    .reverse();
  const wanted = parsedAlerts.flatMap((alert) => alert.vigil.alert.detections.slice(-MAX_EVIDENCE));
  const evidence = new Map<string, ReportEvidence>();
  for (let start = 0; start < wanted.length; start += 1000) {
    const ids = wanted.slice(start, start + 1000);
    const page = await elasticsearch.search({ index: detections, ...LENIENT, size: ids.length, query: { ids: { values: ids } } });
    for (const hit of page.hits.hits) {
      const parsed = detectionSource.safeParse(hit._source);
      if (parsed.success && hit._id !== undefined) evidence.set(hit._id, toEvidence(hit._id, parsed.data));
    }
  }
  const incidents: ReportIncident[] = parsedAlerts.map((source) => {
    const { alert } = source.kibana;
    const own = source.vigil.alert;
    return {
      id: alert.uuid,
      title: own.title,
      severity: alert.severity,
      status: alert.status,
      start: alert.start,
      ...(alert.end ? { end: alert.end } : {}),
      lastDetected: alert.last_detected,
      count: own.count,
      rules: own.rules ?? alert.rule.uuid,
      sentence: alert.reason,
      key: own.key,
      evidence: own.detections.slice(-MAX_EVIDENCE).flatMap((id) => evidence.get(id) ?? []),
    };
  });

  // DoS incidents: alerts grouped per endpoint; the endpoint's traffic per minute around each.
  const dos: ReportDosIncident[] = [];
  const endpointIncidents = incidents.filter((item) => item.key['invocation.resource.api'] && item.key['invocation.route']);
  for (const incident of endpointIncidents.slice(-MAX_DOS)) {
    const api = incident.key['invocation.resource.api'] ?? '';
    const route = incident.key['invocation.route'] ?? '';
    const from = Math.floor(Date.parse(incident.start) / 60_000) * 60_000 - 15 * 60_000;
    // Five minutes past the incident, but not past the report's end (an open incident has no
    // later traffic yet); events stamped ahead of the clock still count, so not capped at now.
    const to = Math.min(Date.parse(incident.end ?? incident.lastDetected) + 5 * 60_000, Math.max(range.to.getTime(), Date.parse(incident.lastDetected) + 60_000));
    const traffic = await elasticsearch.search({
      index: invocations,
      ...LENIENT,
      size: 0,
      query: { bool: { filter: [{ term: { 'vigil.api': api } }, { term: { 'vigil.route': route } }, { range: { '@timestamp': { gte: from, lte: to } } }] } },
      aggs: {
        minutes: {
          date_histogram: { field: '@timestamp', fixed_interval: '1m', min_doc_count: 0, extended_bounds: { min: from, max: to } },
          aggs: {
            errors: { filter: { range: { 'http.response.status_code': { gte: 500 } } } },
            latency: { percentiles: { field: 'vigil.latency_ms', percents: [95] } },
            sources: { cardinality: { field: 'source.ip' } },
          },
        },
      },
    });
    const minutes = aggregation(
      traffic.aggregations,
      'minutes',
      z
        .object({
          buckets: z.array(
            z.object({
              key: z.number(),
              doc_count: z.number(),
              errors: z.object({ doc_count: z.number() }),
              latency: z.object({ values: z.record(z.string(), z.number().nullable()) }),
              sources: z.object({ value: z.number() }),
            }),
          ),
        })
        .default({ buckets: [] }),
    ).buckets;
    dos.push({
      alertId: incident.id,
      title: incident.title,
      api,
      route,
      start: incident.start,
      buckets: minutes.map((bucket) => new Date(bucket.key).toISOString()),
      requests: minutes.map((bucket) => bucket.doc_count),
      errors: minutes.map((bucket) => bucket.errors.doc_count),
      p95LatencyMs: minutes.map((bucket) => (bucket.doc_count === 0 ? null : (Object.values(bucket.latency.values)[0] ?? null))),
      sources: minutes.map((bucket) => bucket.sources.value),
      // A last minute cut short (by the report's end, or five minutes past the incident's) would read as traffic falling away.
      ...(to % 60_000 !== 0 && minutes.length > 0 ? { lastMinuteEndsAt: new Date(to).toISOString() } : {}),
    });
  }

  // Impossible travel: every detection that carries two places.
  const travelPage = await elasticsearch.search({
    index: detections,
    ...LENIENT,
    size: MAX_TRAVEL,
    track_total_hits: true,
    sort: [{ '@timestamp': 'desc' }],
    query: { bool: { filter: [inRange, { exists: { field: 'vigil.detection.geo.distance_km' } }] } },
  });
  const travel = [...travelPage.hits.hits].reverse().flatMap((hit): ReportTravelPair[] => {
    const parsed = detectionSource.safeParse(hit._source);
    const geo = parsed.success ? parsed.data.vigil.detection.geo : undefined;
    if (!parsed.success || !geo || hit._id === undefined) return [];
    return [
      {
        detectionId: hit._id,
        time: parsed.data['@timestamp'],
        entity: Object.entries(parsed.data.vigil.detection.key).map(([field, value]) => `${field}=${value}`).join(', '),
        from: place(geo.from),
        to: place(geo.to),
        ...(geo.distance_km === undefined ? {} : { distanceKm: geo.distance_km }),
        ...(geo.speed_kmh === undefined ? {} : { speedKmh: geo.speed_kmh }),
        sentence: parsed.data.message,
      },
    ];
  });

  return {
    generatedAt: now.toISOString(),
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    indexPrefix: prefix,
    totals: { detections: total, incidents: incidentTotal, rules: ruleCount, dos: endpointIncidents.length, travel: hitCount(travelPage.hits.total) },
    timeline,
    entities,
    incidents,
    dos,
    travel,
  };
}

/** Collects and writes a report; returns the absolute path of the file and what it holds. */
export async function writeReport(
  elasticsearch: Client,
  config: Config,
  range: ReportRange,
  out: string,
): Promise<{ path: string; data: ReportData }> {
  await elasticsearch.indices.refresh({ index: [detectionIndexNames(config.indices.prefix).pattern, alertIndexNames(config.indices.prefix).index], ...LENIENT });
  const data = await collectReport(elasticsearch, config, range);
  const path = resolve(out);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderReport(data));
  return { path, data };
}

/** `vigil report --from T --to T --out FILE`: returns the exit code. */
export async function runReport(options: ReportOptions): Promise<number> {
  let range: ReportRange;
  try {
    range = parseReportRange(options.from, options.to);
  } catch (error) {
    if (!(error instanceof ReportRangeError)) throw error;
    console.error(`vigil report: ${error.message}`);
    return 2;
  }
  const config = loadConfig();
  const elasticsearch = createElasticsearch(config);
  try {
    let written: Awaited<ReturnType<typeof writeReport>>;
    try {
      written = await writeReport(elasticsearch, config, range, options.out);
    } catch (error) {
      // Named, not a bare "connect ECONNREFUSED". (Not a probe first: cluster health needs the
      // monitor privilege, which an analyst's read-only key lacks and the report does not need.)
      if (error instanceof esErrors.ConnectionError || error instanceof esErrors.TimeoutError) {
        throw new ConnectionError('elasticsearch', urlWithoutCredentials(config.elasticsearch.url), 'unreachable', error);
      }
      if (error instanceof esErrors.ResponseError && error.statusCode === 401) {
        throw new ConnectionError('elasticsearch', urlWithoutCredentials(config.elasticsearch.url), 'authentication failed', error);
      }
      throw error;
    }
    const { path, data } = written;
    console.log(
      `wrote ${path}: ${data.totals.incidents} incidents, ${data.totals.detections} detections on ${data.totals.rules} rules, ${data.totals.dos} DoS incidents, ${data.totals.travel} impossible-travel pairs (${data.from} to ${data.to})`,
    );
    for (const cut of cutLists(data)) console.log(`note: ${cut}`);
    return 0;
  } finally {
    await elasticsearch.close();
  }
}
