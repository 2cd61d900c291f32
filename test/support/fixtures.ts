/**
 * The rule fixture runner: each rule's cases (detectors/rules/fixtures/<rule>.yaml) through the
 * production engine on a real Redis. Used by test/integration/rule-fixtures.test.ts, which
 * `vigil rules test` runs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues, eventSchema, type Detection, type GeoDocument } from '../../schemas';
import { correlate, type Enrichment } from '../../ingest';
import { ValidationError } from '../../platform';
import { Correlator, DetectionEngine, deleteKeysUnder, durationSchema, type DetectionInput, type RuleSet } from '../../detectors';

const eventStepSchema = z.strictObject({
  /** Offset of the first event from the case's start time. */
  at: durationSchema.or(z.literal('0s').transform(() => 0)).default(0),
  /** How many copies. @defaultValue 1 */
  repeat: z.number().int().min(1).max(100_000).default(1),
  /** Spacing of the copies. @defaultValue 1s */
  every: durationSchema.default(1000),
  /**
   * The event, without id, time, schemaVersion (filled in); `source` defaults to a fixture
   * gateway. In its strings, `{n}` becomes the copy's number and `{ip}` a distinct public IP per
   * copy (a crowd), so one step can stand for many users.
   */
  event: z.record(z.string(), z.unknown()),
  /** Override enrichment: a location for geo rules, so fixtures don't depend on a geo database. */
  geo: z.strictObject({ lat: z.number(), lon: z.number(), accuracyKm: z.number().optional(), country: z.string().optional(), city: z.string().optional() }).optional(),
});

const caseSchema = z.strictObject({
  name: z.string().min(3),
  /** Events per engine batch. @defaultValue 1 (state crosses batches, as in production) */
  batch: z.number().int().min(1).max(1000).default(1),
  events: z.array(eventStepSchema).min(1),
  /** The detections of the fixture's rule, in order; each is matched as a subset. Empty: quiet. */
  expect: z.array(z.record(z.string(), z.unknown())),
});

/** A rule's fixtures: cases of events in and the detections expected out. */
export const fixtureSchema = z.strictObject({
  rule: z.string(),
  /**
   * Operator list files (relative to the fixture's folder) the rules are loaded with for this
   * fixture, e.g. a trusted egress range the shipped lists leave empty. @defaultValue the shipped lists only
   */
  lists: z.array(z.string().min(1)).optional(),
  cases: z.array(caseSchema).min(1),
});
export type Fixture = z.infer<typeof fixtureSchema> & { file: string };
export type FixtureCase = z.infer<typeof caseSchema>;

const START = Date.parse('2026-01-05T09:00:00Z');

/** Replaces `{n}` and `{ip}` in every string of a fixture event. */
function instantiate(value: unknown, copy: number): unknown {
  if (typeof value === 'string') {
    const ip = `45.${(copy >> 16) & 255}.${(copy >> 8) & 255}.${copy & 255}`;
    return value.replaceAll('{n}', String(copy)).replaceAll('{ip}', ip);
  }
  if (Array.isArray(value)) return value.map((item) => instantiate(item, copy));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, instantiate(item, copy)]));
  }
  return value;
}

/** Reads every `*.yaml` fixture under a folder. @throws ValidationError naming the file and field */
export function loadFixtures(folder: string): Fixture[] {
  return readdirSync(folder)
    .filter((file) => /\.ya?ml$/.test(file))
    .sort()
    .map((file) => {
      const path = join(folder, file);
      const parsed = fixtureSchema.safeParse(parseYaml(readFileSync(path, 'utf8'), { merge: true }));
      if (!parsed.success) throw new ValidationError(`invalid fixture ${path}`, describeIssues(parsed.error), 'fixture_invalid');
      return { ...parsed.data, file: path };
    });
}

/** The events of a case, in time order, as the detectors see them. */
export function fixtureInputs(fixture: Fixture, index: number): DetectionInput[] {
  const testCase = fixture.cases[index];
  if (testCase === undefined) throw new RangeError(`no case ${index} in ${fixture.file}`);
  const inputs: { input: DetectionInput; order: number }[] = [];
  let counter = 0;
  for (const step of testCase.events) {
    for (let copy = 0; copy < step.repeat; copy++) {
      counter++;
      const candidate = {
        source: { service: 'fixture-gateway', kind: 'gateway' },
        ...(instantiate(step.event, copy) as Record<string, unknown>),
        id: `fx-${fixture.rule}-${index}-${counter}`,
        schemaVersion: 1,
        time: new Date(START + step.at + copy * step.every).toISOString(),
      };
      const parsed = eventSchema.safeParse(candidate);
      if (!parsed.success) {
        throw new ValidationError(`invalid event in ${fixture.file}, case "${testCase.name}"`, describeIssues(parsed.error), 'fixture_invalid');
      }
      inputs.push({ input: { event: parsed.data, ...(step.geo ? { geo: step.geo, ipScope: 'public' as const } : {}) }, order: counter });
    }
  }
  return inputs
    .sort((a, b) => Date.parse(a.input.event.time) - Date.parse(b.input.event.time) || a.order - b.order)
    .map(({ input }) => input);
}

/** What enrichment would have said of a fixture event: its given place, or nothing. */
function enrichmentOf(input: DetectionInput): Enrichment {
  const geo = input.geo;
  if (!geo) return { geoSource: 'none' };
  const document: GeoDocument = {};
  if (geo.lat !== undefined && geo.lon !== undefined) document.location = { lat: geo.lat, lon: geo.lon };
  if (geo.country !== undefined) document.country_iso_code = geo.country;
  if (geo.city !== undefined) document.city_name = geo.city;
  return { ipScope: 'public', geoSource: 'geoip', geo: document, ...(geo.accuracyKm === undefined ? {} : { accuracyKm: geo.accuracyKm }) };
}

/**
 * Runs one case through the pipeline's own correlate stage and the production engine on the real
 * Redis, under a throwaway key prefix it deletes afterwards, one event per batch (state crosses
 * batches as it does in production), and returns the detections of the fixture's rule.
 */
export async function runFixtureCase(redis: Redis, ruleSet: RuleSet, fixture: Fixture, index: number): Promise<Detection[]> {
  const prefix = `fixture-${randomBytes(6).toString('hex')}`;
  const engine = new DetectionEngine({ redis, rules: ruleSet, keyPrefix: prefix, clock: 'watermark' });
  // As replay does: no wait, a request's decisions are in the case or never coming.
  const correlator = new Correlator({ redis, prefix, waitMs: 0 });
  const found: Detection[] = [];
  try {
    const inputs = fixtureInputs(fixture, index);
    const size = fixture.cases[index]?.batch ?? 1;
    for (let start = 0; start < inputs.length; start += size) {
      const items = inputs.slice(start, start + size).map((input) => ({ event: input.event, enrichment: enrichmentOf(input) }));
      const correlated = await correlate(items, { correlator, detecting: true });
      found.push(...(await engine.evaluateBatch(correlated.inputs)).filter((detection) => detection.ruleId === fixture.rule));
    }
  } finally {
    await deleteKeysUnder(redis, prefix);
  }
  return found;
}
