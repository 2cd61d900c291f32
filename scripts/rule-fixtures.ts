/**
 * The rule fixture runner: each rule's cases (`<rule>.yaml`: events in, the detections expected
 * out) through the production engine on a real Redis. `vigil rules test` runs it over the shipped
 * pack and fixtures (detectors/rules/), or over rule files and fixture folders of your own;
 * test/integration/rule-fixtures.test.ts runs the shipped ones case by case.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { describeIssues, eventSchema, type Detection, type GeoDocument } from '../schemas';
import { correlate, type Enrichment } from '../ingest';
import { ValidationError, createRedis, loadConfig, requireConnections, type Config, type RedisClient } from '../platform';
import { Correlator, DEFAULT_RULES_PATH, DetectionEngine, DuplicateKeyError, deleteKeysUnder, durationSchema, loadRuleSet, parseRuleFileText, ruleFiles, type DetectionInput, type RuleSet } from '../detectors';

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

/** The shipped fixtures, one file per rule of the default pack. */
export const DEFAULT_FIXTURES_PATH = join(__dirname, '..', 'detectors', 'rules', 'fixtures');

/**
 * Reads every fixture file of a folder (or the file named): `.yaml`, `.yml` or `.json`, in any
 * case, found and parsed as rule files are ({@link ruleFiles}, {@link parseRuleFileText}).
 * @throws ValidationError naming the file and field (or that it cannot be parsed), or the folder when it holds no fixture file
 * @throws RuleSetError when the folder does not exist
 */
export function loadFixtures(folder: string): Fixture[] {
  const files = ruleFiles([folder]);
  // A folder of nothing (empty, misnamed files) ran no case and passed: a CI gate testing nothing.
  if (files.length === 0) throw new ValidationError(`no fixture file in ${folder}`, ['it holds no .yaml, .yml or .json file, so no case would run'], 'fixture_missing');
  return files.map((path) => {
    let content: unknown;
    try {
      // As a rule file is read: a leading byte-order mark dropped, a .json file as JSON, a key written twice refused.
      content = parseRuleFileText(path, readFileSync(path, 'utf8'));
    } catch (error) {
      const issue = error instanceof DuplicateKeyError ? `${error.at.join('.')}: ${error.message}` : `cannot be parsed: ${(error as Error).message}`;
      throw new ValidationError(`invalid fixture ${path}`, [issue], 'fixture_invalid');
    }
    const parsed = fixtureSchema.safeParse(content);
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
 * batches as it does in production), and returns the detections of the fixture's rule. The prefix
 * is under `namespace` (`VIGIL_REDIS_PREFIX`, as replay's: a Redis user may be limited to it).
 */
export async function runFixtureCase(redis: RedisClient, ruleSet: RuleSet, fixture: Fixture, index: number, namespace = 'vigil'): Promise<Detection[]> {
  const prefix = `${namespace}:fixture-${randomBytes(6).toString('hex')}`;
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

/**
 * Where a detection differs from what a fixture expects of it, as jest's `toMatchObject` reads a
 * partial: every key the expectation names, at any depth; arrays whole, element by element.
 * Undefined when it matches.
 */
export function mismatchOf(expected: unknown, actual: unknown, path = ''): string | undefined {
  const at = path === '' ? '' : `${path}: `;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}expected a list, got ${JSON.stringify(actual) ?? 'nothing'}`;
    if (actual.length !== expected.length) return `${at}expected ${expected.length} items, got ${actual.length} (${JSON.stringify(actual)})`;
    for (const [index, item] of expected.entries()) {
      const problem = mismatchOf(item, actual[index], `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${at}expected an object, got ${JSON.stringify(actual) ?? 'nothing'}`;
    for (const [key, value] of Object.entries(expected)) {
      const problem = mismatchOf(value, (actual as Record<string, unknown>)[key], path === '' ? key : `${path}.${key}`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : `${at}expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual) ?? 'nothing'}`;
}

/** Options of {@link runRuleTests}. */
export interface RuleTestOptions {
  /** Rule files and folders. @defaultValue the shipped pack */
  rules?: string[];
  /** Fixture folders. @defaultValue the shipped fixtures */
  fixtures?: string[];
  /** List files and folders over the shipped lists. @defaultValue none beyond the shipped lists */
  lists?: string[];
  /** @defaultValue the configuration of the environment (REDIS_URL) */
  config?: Config;
  /** Where the lines go. @defaultValue console.log */
  print?: (line: string) => void;
}

/**
 * `vigil rules test`: every case of every fixture through the production engine on the
 * configured Redis (under a throwaway prefix), one line per case, the first difference under a
 * case that fails. A fixture whose rule is not in the set fails; a rule without fixtures is named.
 * @returns 0 when every case passes, else 1
 * @throws RuleSetError when the rules do not load; ValidationError for a fixture that does not parse
 */
export async function runRuleTests(options: RuleTestOptions = {}): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const rulePaths = options.rules ?? [DEFAULT_RULES_PATH];
  const lists = options.lists ?? [];
  const ruleSet = loadRuleSet(rulePaths, { lists });
  const fixtures = (options.fixtures ?? [DEFAULT_FIXTURES_PATH]).flatMap((folder) => loadFixtures(folder));
  const ids = new Set(ruleSet.rules.map((compiled) => compiled.rule.id));
  const cases = fixtures.reduce((sum, fixture) => sum + fixture.cases.length, 0);
  if (cases === 0) throw new ValidationError('no fixture case to run', ['name a fixture folder holding at least one fixture file'], 'fixture_missing');
  print(`rule fixtures: ${ruleSet.rules.length} rules (digest ${ruleSet.digest}), ${fixtures.length} fixture files, ${cases} cases`);
  const config = options.config ?? loadConfig();
  const redis = createRedis(config);
  let passed = 0;
  let failed = 0;
  try {
    await requireConnections(config, { redis });
    for (const fixture of fixtures) {
      if (!ids.has(fixture.rule)) {
        failed += fixture.cases.length;
        print(`  ✗ ${fixture.rule}  (${fixture.file}): no such rule in the set (or it is disabled); its ${fixture.cases.length} cases did not run`);
        continue;
      }
      // A fixture that names list files runs with them over the set's lists (each file is visited once).
      const rules = fixture.lists === undefined ? ruleSet : loadRuleSet(rulePaths, { lists: [...lists, ...fixture.lists.map((file) => join(dirname(fixture.file), file))] });
      for (const [index, testCase] of fixture.cases.entries()) {
        const detections = await runFixtureCase(redis, rules, fixture, index, config.redis.prefix);
        const problem =
          detections.length !== testCase.expect.length
            ? `expected ${testCase.expect.length} detections, got ${detections.length}${detections.length > 0 ? `: ${detections.map((detection) => detection.reason).join('; ')}` : ''}`
            : testCase.expect.map((partial, position) => mismatchOf(partial, detections[position])).map((text, position) => (text === undefined ? undefined : `detection ${position + 1}: ${text}`)).find((text) => text !== undefined);
        if (problem === undefined) {
          passed++;
          print(`  ✓ ${fixture.rule}  ${testCase.name}`);
        } else {
          failed++;
          print(`  ✗ ${fixture.rule}  ${testCase.name}`);
          print(`      ${problem}`);
        }
      }
    }
  } finally {
    await redis.quit().catch(() => undefined);
  }
  const covered = new Set(fixtures.map((fixture) => fixture.rule));
  const untested = [...ids].filter((id) => !covered.has(id));
  print(`${passed + failed} cases: ${passed} passed, ${failed} failed${untested.length > 0 ? `; rules without fixtures: ${untested.join(', ')}` : ''}`);
  return failed === 0 ? 0 : 1;
}
