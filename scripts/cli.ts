import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exportJsonSchemas } from '../schemas';
import { createAdapt, createVigil, parseRoles, type Role, type Vigil } from '../app';
import { ADAPTERS } from '../ingest';
import { RuleSetError, loadRuleSet } from '../detectors';
import { runReplay } from './replay';
import { ConfigError, ValidationError, applyHeapGrowth, loadConfig, scrubSecrets, secretsOf, shortSecretSettings, shortSecretsWarning, unknownVariables, unknownVariablesWarning, type Config, type Logger } from '../platform';
import { runDemo } from './demo';
import { routeConsole } from './route-console';
import { runDeadLetters } from './deadletters';
import { runNotifications } from './notifications';
import { runSilences } from './silences';
import { ReportRangeError, parseReportTime, runReport } from './report';
import { runCoverage } from './coverage';
import { DASHBOARDS_USAGE, runDashboards } from './dashboards';
import { runTopics } from './topics';
import { stopRequested } from './stop-request';
import { EVALUATE_USAGE, runEvaluate } from './evaluate/run';
import { runRuleTests } from './rule-fixtures';

const USAGE = `vigil: security event logging and fraud detection for API platforms

usage: vigil <command> [options]      (vigil --version: the version)

commands:
  stack up|down|status|logs   start, stop or inspect the local Kafka, Elasticsearch and Redis
  run [--roles R,...]         run the ingest pipeline and the alerter until SIGINT/SIGTERM;
                              --roles ingest, alerting, intake: only these, the rest in another
                              process (docs/deployment.md#one-process-per-role)
  intake                      run only the HTTP intake for Kong's http-log plugin (needs
                              VIGIL_INTAKE_TOKEN; see docs/gateways/kong-http-log.md)
  adapt --format F --topic T  translate a gateway's raw topic T (format kong, apisix, ...) into
                              contract events until SIGINT/SIGTERM (docs/gateways/README.md)
  demo [--events N] [--via kong] [--no-stack]
                              bring the stack up, run the pipeline, emit N events (default 3000)
                              from simulated gateways and services, print a summary and write
                              the incident report (--no-stack: use the configured stores as they are;
                              --via kong: the first gateway's traffic goes through Kong log records
                              and vigil adapt)
  topics ensure               create Vigil's topics that are missing (partitions, replication,
                              retention from configuration), e.g. before producing a backlog
  schemas export [--out DIR]  print the JSON Schemas of the event contract, or write them to DIR
  rules validate PATH...      check rule files (YAML or JSON); names the file, rule and field at fault
        [--lists PATH,...]    with these list files over the shipped lists (default: VIGIL_LISTS_PATH)
  rules test [PATH...]        run rule fixtures (events in, detections expected) through the engine
        [--fixtures DIR,...]  on the configured Redis: the shipped pack and fixtures, or these
        [--lists PATH,...]    rules and fixture folders; exit 1 when a case fails (docs/rules.md)
  rules coverage --from T --to T  replay the events stored in the range (ISO 8601 or now-2h):
        [--rules P] [--lists P] [--json]  per rule, the events its filter (each sequence step)
                              matched, rules that never matched flagged; per list, the entries
                              never seen in the fields that use them (docs/rules.md#coverage)
  replay --file F.ndjson      run the rules over stored events with no side effects and report
  replay --from T --to T      ... or over events in Elasticsearch between two times
        [--rules PATH]        rule files to use (default: the configured rules)
        [--lists PATH,...]    list files over the shipped lists (default: VIGIL_LISTS_PATH)
  report --from T --to T      a self-contained HTML incident report of a time range (ISO 8601 or
        --out FILE.html       now-2h): incidents with evidence, detections over time, top entities,
                              DoS traffic, impossible travel (docs/report.md)
  deadletters list            the dead-letter topic by reason: counts, oldest/newest, source topics
  deadletters show            dead letters with their headers and original bytes
        [--reason R] [--from T --to T] [--offset TOPIC:P:O] [--limit N]
  deadletters redrive         send chosen dead letters back to their source topic, once the
        --reason R | --from T --to T | --offset TOPIC:P:O  [--dry-run] [--force] [--raw-topic T]
                              cause is fixed (vigil deadletters --help for the details)
  notifications missed        notifications that failed for good, per alert: the destinations
        [--from T --to T] [--destination NAME]  that missed them, why, and whether the alert
                              is still open (after a Slack or PagerDuty outage; docs/alerting.md)
  notifications resend        send each destination what it missed, from the alert as it is now
        [--from T --to T] [--destination NAME] [--dry-run]  (each dead letter once; exit 1 on a failure)
  silences add --match FIELD=VALUE [--rule ID] --for DURATION --comment TEXT
                              hold back the notifications of matching alerts for a while (a pen
                              test, a load test); still opened and indexed (docs/alerting.md)
  silences list | expire ID   the silences, in force first; end one now
  dashboards install --kibana URL [--space ID] [--api-key KEY | --user U --password P]
                              import Vigil's Kibana data views, dashboards and searches
                              (overwrite: safe to re-run; docs/dashboards.md)
  dashboards export [--out FILE]  the same saved objects as NDJSON
  evaluate [--seed N] [--json]  generate an hour of labelled traffic (attacks and hard benign cases),
       [--users N] [--speed X]  run it through the pipeline and alerter on the configured stores,
       [--keep]               and grade it: caught or not, alerts and notifications per case
                              (docs/evaluate.md); exit 0 only when every target is met
  --help                      this text

configuration comes from the environment; see .env.example and docs/configuration.md.`;

/**
 * The repository (scripts/stack.sh, the tests), found from this file whether it runs from the
 * sources (scripts/) or compiled (dist/scripts/): the nearest folder with a package.json.
 */
const ROOT = ((): string => {
  for (let folder = __dirname; ; folder = dirname(folder)) {
    if (existsSync(join(folder, 'package.json'))) return folder;
    if (dirname(folder) === folder) throw new Error(`no package.json above ${__dirname}`);
  }
})();

/** Runs the local-stack script; its output goes straight to the terminal. */
export function stack(action: string): number {
  const result = spawnSync('bash', [join(ROOT, 'scripts', 'stack.sh'), action], { stdio: 'inherit' });
  return result.status ?? 1;
}

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

/** A refused rule set, one problem a line: the file, the rule or list, the path, the message. */
function printProblems(error: RuleSetError): void {
  console.error(`rule set refused (${error.problems.length} ${error.problems.length === 1 ? 'problem' : 'problems'}):`);
  for (const problem of error.problems) {
    console.error(`  ${problem.file}${problem.ruleId ? `  rule ${problem.ruleId}` : ''}${problem.listId ? `  list ${problem.listId}` : ''}  ${problem.path || '(file)'}: ${problem.message}`);
  }
}

/** Settles after `ms` with `value`, on a timer that never keeps the process up by itself. */
function after<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

/**
 * Said once, at start: a misspelt `VIGIL_*` name leaves its setting at the default, and a secret
 * too short to be looked for in log lines can reach one inside an error message.
 */
function warnAtStart(log: Logger, config: Config): void {
  const unknown = unknownVariables(process.env);
  if (unknown.length > 0) log.warn({ variables: unknown }, unknownVariablesWarning(unknown));
  const short = shortSecretSettings(config);
  if (short.length > 0) log.warn({ settings: short }, shortSecretsWarning(short));
}

/**
 * `vigil run`: runs until SIGINT or SIGTERM (exit 0) or until Vigil fails for good, e.g. a
 * consumer past its restart budget (exit 1, one log line saying why). Either way it stops
 * everything first, within VIGIL_SHUTDOWN_TIMEOUT_MS; a stop that overruns it exits 1.
 */
async function run(roles?: readonly Role[]): Promise<number> {
  const config = loadConfig();
  const vigil = createVigil(config, roles ? { roles } : {});
  // Process-wide, so here and not in createVigil: tests and embedders keep their own heap rules.
  applyHeapGrowth(config.heapGrowthPercent, vigil.logger);
  const log = vigil.logger.child({ component: 'vigil' });
  // From here until it stops, what libraries print goes out as JSON lines like the rest.
  const restoreConsole = routeConsole(vigil.logger);
  try {
    return await runUntilStopped(vigil, config, log);
  } finally {
    restoreConsole();
  }
}

/** `vigil run` once Vigil is built: starts it, waits for a signal or a failure, stops it; the exit code. */
async function runUntilStopped(vigil: Vigil, config: Config, log: Logger): Promise<number> {
  warnAtStart(log, config);
  const signalled = stopRequested();
  // A signal during the start (a store still away, a group still joining) stops it there: the
  // start then rejects, saying so, which is the stop's to report, not a failure of its own.
  const starting = vigil.start();
  const first = await Promise.race([starting.then(() => undefined), signalled.then((signal) => ({ signal }))]);
  if (first !== undefined) starting.catch(() => undefined);
  const outcome = first ?? (await Promise.race([signalled.then((signal) => ({ signal })), vigil.failure.then((failure) => ({ failure }))]));
  if ('signal' in outcome) log.info({ signal: outcome.signal, deadlineMs: config.shutdownTimeoutMs }, outcome.signal === 'launcher exited' ? 'stopping: the npm launcher that started vigil exited' : 'stopping');
  // A second signal while stopping means "now".
  void signalled.then(() => new Promise<NodeJS.Signals>((done) => process.once('SIGTERM', done).once('SIGINT', done))).then((signal) => {
    log.error({ signal }, 'second signal while stopping; exiting with 1 without waiting');
    process.exit(1);
  });
  const stopped = await Promise.race([
    vigil.stop().then(
      () => true,
      () => true,
    ),
    after(config.shutdownTimeoutMs, false),
  ]);
  let code = 0;
  if ('failure' in outcome) {
    log.fatal({ err: outcome.failure }, `vigil failed, exiting with 1 so a supervisor restarts it: ${outcome.failure.message}`);
    code = 1;
  }
  if (!stopped) {
    log.error({ deadlineMs: config.shutdownTimeoutMs }, `vigil did not stop within VIGIL_SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs} ms); exiting with 1`);
    return 1;
  }
  // Everything Vigil opened is closed; a handle some library still holds must not keep a stopped
  // process alive (a supervisor would wait for it).
  void after(2000, undefined).then(() => {
    log.warn('handles still open after a clean stop; exiting anyway');
    process.exit(code);
  });
  return code;
}

/**
 * `vigil adapt`: runs the adapt consumer until SIGINT or SIGTERM (exit 0, after the chunk in hand
 * is committed) or until it fails for good (exit 1); prints its counters when it stops.
 */
/** `vigil adapt --help`: the formats, each with what it reads, and the settings it needs. */
const ADAPT_USAGE = [
  'usage: vigil adapt --format FORMAT --topic RAW_TOPIC',
  '',
  "translates a gateway's request logs on RAW_TOPIC into contract events until SIGINT/SIGTERM",
  '',
  'formats:',
  ...Object.values(ADAPTERS).map((adapter) => `  ${adapter.format.padEnd(8)}${adapter.description}`),
  '',
  'settings: VIGIL_ADAPT_SERVICE and VIGIL_ADAPT_GROUPS (required), VIGIL_ADAPT_* (docs/configuration.md);',
  'per gateway: docs/gateways/README.md',
].join('\n');

async function adapt(args: readonly string[]): Promise<number> {
  const format = option(args, '--format');
  const topic = option(args, '--topic');
  if (format === undefined || topic === undefined) {
    const missing = [format === undefined ? '--format' : undefined, topic === undefined ? '--topic' : undefined].filter((name) => name !== undefined);
    console.error(`vigil adapt: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} required\n\n${ADAPT_USAGE}`);
    return 2;
  }
  const config = loadConfig();
  const running = createAdapt(config, { format, topic, ...(config.http.port === 0 ? {} : { http: { host: config.http.host, port: config.http.port } }) });
  applyHeapGrowth(config.heapGrowthPercent, running.logger);
  const log = running.logger.child({ component: 'vigil' });
  warnAtStart(log, config);
  const signalled = stopRequested();
  await running.start();
  const outcome = await Promise.race([signalled.then((signal) => ({ signal })), running.failure.then((failure) => ({ failure }))]);
  const stopped = await Promise.race([running.stop().then(() => true), after(config.shutdownTimeoutMs, false)]);
  console.log(JSON.stringify({ adapt: { format, topic, ...running.stats() } }));
  if ('failure' in outcome) {
    log.fatal({ err: outcome.failure }, `vigil adapt failed, exiting with 1: ${outcome.failure.message}`);
    return 1;
  }
  return stopped ? 0 : 1;
}

/** A time Elasticsearch takes in a range: ISO 8601, epoch milliseconds, or date math from `now`. */
const REPLAY_TIME = /^(?:\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|\d{13}|now(?:[+-]\d+[yMwdhHms])*(?:\/[yMwdhHms])?)$/;

/**
 * A replay time as milliseconds, when it is one the report's grammar reads (ISO 8601 with a zone,
 * epoch milliseconds, `now`, `now-2h`); undefined for other date math, left to Elasticsearch.
 */
function replayTimeMs(text: string, now: Date): number | undefined {
  if (/^\d{13}$/.test(text.trim())) return Number(text.trim());
  try {
    return parseReportTime(text, now).getTime();
  } catch {
    return undefined;
  }
}

/** What a command takes after its name: options with a value, flags, subcommands, free paths. */
interface ArgumentSpec {
  values?: readonly string[];
  flags?: readonly string[];
  subcommands?: readonly string[];
  paths?: boolean;
}

/**
 * The arguments each command takes. A command is checked before it loads the configuration or
 * connects to anything: `vigil run --help` used to start the pipeline, and a misspelt option was
 * ignored. `deadletters`, `notifications` and `silences` parse (and explain) their own.
 */
const ARGUMENTS: Readonly<Record<string, ArgumentSpec>> = {
  stack: { subcommands: ['up', 'down', 'status', 'logs'] },
  run: { values: ['--roles'] },
  intake: {},
  adapt: { values: ['--format', '--topic'] },
  demo: { values: ['--events', '--via'], flags: ['--no-stack'] },
  topics: { subcommands: ['ensure'] },
  schemas: { subcommands: ['export'] },
  'schemas export': { values: ['--out'] },
  rules: { subcommands: ['validate', 'test', 'coverage'] },
  'rules validate': { values: ['--lists'], paths: true },
  'rules test': { values: ['--fixtures', '--lists'], paths: true },
  'rules coverage': { values: ['--from', '--to', '--rules', '--lists'], flags: ['--json'] },
  replay: { values: ['--file', '--from', '--to', '--rules', '--lists'] },
  report: { values: ['--from', '--to', '--out'] },
  dashboards: { subcommands: ['install', 'export'] },
  'dashboards install': { values: ['--kibana', '--space', '--api-key', '--user', '--password'] },
  'dashboards export': { values: ['--out'] },
  evaluate: { values: ['--seed', '--users', '--speed', '--resolve-after-ms', '--settle-ms'], flags: ['--json', '--keep'] },
};

/**
 * `help` when the arguments ask for it, else the first argument the command does not take, named
 * (a message); undefined when all are known.
 */
export function checkArguments(command: string, rest: readonly string[]): string | undefined {
  const spec = ARGUMENTS[command];
  if (spec === undefined) return undefined;
  // A subcommand with options of its own (`rules validate`) is checked against those alone.
  const [first = '', ...after] = rest;
  const own = spec.subcommands?.includes(first) === true ? ARGUMENTS[`${command} ${first}`] : undefined;
  if (own !== undefined) return checkArguments(`${command} ${first}`, after);
  const given = new Map<string, string>();
  for (let index = 0; index < rest.length; index++) {
    const arg = rest[index] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    if (spec.values?.includes(arg)) {
      if (index + 1 >= rest.length) return `vigil ${command}: ${arg} needs a value`;
      // Only the first was read: `report --from bogus --from now-1h` failed on "bogus".
      const value = rest[index + 1] ?? '';
      const before = given.get(arg);
      if (before !== undefined) return `vigil ${command}: ${arg} given twice ("${before}" and "${value}"): give it once`;
      given.set(arg, value);
      index++;
      continue;
    }
    if (spec.flags?.includes(arg)) continue;
    if (index === 0 && spec.subcommands?.includes(arg)) continue;
    if (spec.paths === true && (index > 0 || spec.subcommands === undefined) && !arg.startsWith('-')) continue;
    return arg.startsWith('-') ? `vigil ${command}: unknown option ${arg}` : `vigil ${command}: unexpected argument "${arg}"`;
  }
  return undefined;
}

/** The version in the repository's package.json (the image and the CLI are built from it). */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

/** The CLI's entry point; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [command, sub] = args;
  const problem = command === undefined ? undefined : checkArguments(command, args.slice(1));
  if (problem === 'help') {
    // A command with options of its own has its own usage; the rest are in the general one.
    const own: Partial<Record<string, string>> = { adapt: ADAPT_USAGE, evaluate: EVALUATE_USAGE, dashboards: DASHBOARDS_USAGE };
    console.log(own[command ?? ''] ?? USAGE);
    return 0;
  }
  if (problem !== undefined) {
    console.error(`${problem}\n\n${USAGE}`);
    return 2;
  }
  // `run`, `adapt` and `intake` log it at start; every other command that reads the
  // configuration says it here, once (a misspelt VIGIL_TOPIC_DEADLETTER read the default topic
  // without a word).
  if (command !== undefined && !['run', 'adapt', 'intake', 'version', '--version', 'help', '--help', '-h'].includes(command)) {
    const unknown = unknownVariables(process.env);
    if (unknown.length > 0) console.error(`vigil: note: ${unknownVariablesWarning(unknown)}`);
  }
  try {
    switch (command) {
      case 'stack':
        if (!sub || !['up', 'down', 'status', 'logs'].includes(sub)) {
          console.error('usage: vigil stack up|down|status|logs');
          return 2;
        }
        return stack(sub);
      case 'run': {
        const named = option(args, '--roles');
        if (named === undefined) return await run();
        const parsed = parseRoles(named);
        if ('problem' in parsed) {
          console.error(`vigil run: --roles: ${parsed.problem}`);
          return 2;
        }
        return await run(parsed.roles);
      }
      case 'intake':
        return await run(['intake']);
      case 'adapt':
        return await adapt(args.slice(1));
      case 'demo': {
        const eventsText = option(args, '--events') ?? '3000';
        const events = /^\d{1,7}$/.test(eventsText) ? Number(eventsText) : Number.NaN;
        if (!Number.isInteger(events) || events < 10 || events > 1_000_000) {
          console.error('vigil demo: --events must be an integer between 10 and 1000000');
          return 2;
        }
        const via = option(args, '--via');
        if (via !== undefined && via !== 'kong') {
          console.error(`vigil demo: --via takes kong (the gateway format the first simulated gateway runs through), not "${via}"`);
          return 2;
        }
        // --no-stack: the stores are someone else's (docker compose, a cluster); start nothing.
        if (!args.includes('--no-stack') && stack('up') !== 0) return 1;
        return await runDemo({ events, ...(via !== undefined ? { via } : {}) });
      }
      case 'schemas': {
        if (sub !== 'export') {
          console.error('usage: vigil schemas export [--out DIR]');
          return 2;
        }
        const schemas = exportJsonSchemas();
        const out = option(args, '--out');
        if (out === undefined) {
          console.log(JSON.stringify(schemas, null, 2));
          return 0;
        }
        mkdirSync(out, { recursive: true });
        for (const [name, schema] of Object.entries(schemas)) {
          writeFileSync(join(out, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
        }
        console.log(`wrote ${Object.keys(schemas).length} JSON Schemas to ${out}`);
        return 0;
      }
      case 'rules': {
        if (sub === 'validate') {
          const listsOption = option(args, '--lists');
          const paths = args.slice(2).filter((arg, index, all) => arg !== '--lists' && all[index - 1] !== '--lists');
          if (paths.length === 0) {
            console.error('usage: vigil rules validate PATH... [--lists PATH,...]');
            return 2;
          }
          const lists = listsOption !== undefined ? listsOption.split(',') : (loadConfig().detection.listsPaths ?? []);
          try {
            const ruleSet = loadRuleSet(paths, { lists });
            console.log(`${ruleSet.rules.length} rules OK in ${ruleSet.files.length} files, ${ruleSet.lists.size} lists in ${ruleSet.listFiles.length} files (digest ${ruleSet.digest})`);
            for (const compiled of ruleSet.rules) console.log(`  ${compiled.rule.id} v${compiled.rule.version}  ${compiled.rule.type}  ${compiled.rule.severity}`);
            for (const list of ruleSet.lists.values()) console.log(`  list ${list.id}  ${list.kind}  ${list.values.length} entries`);
            return 0;
          } catch (error) {
            if (!(error instanceof RuleSetError)) throw error;
            printProblems(error);
            return 1;
          }
        }
        if (sub === 'coverage') {
          const from = option(args, '--from');
          const to = option(args, '--to');
          const rules = option(args, '--rules');
          const lists = option(args, '--lists');
          if (from === undefined || to === undefined) {
            console.error('usage: vigil rules coverage --from TIME --to TIME [--rules PATH,...] [--lists PATH,...] [--json]   (TIME: ISO 8601, or now, now-15m, now-2h, now-1d)');
            return 2;
          }
          try {
            return await runCoverage({ from, to, json: args.includes('--json'), ...(rules ? { rules: rules.split(',') } : {}), ...(lists ? { lists: lists.split(',') } : {}) });
          } catch (error) {
            if (error instanceof ReportRangeError) {
              console.error(`vigil rules coverage: ${error.message}`);
              return 2;
            }
            if (!(error instanceof RuleSetError)) throw error;
            printProblems(error);
            return 1;
          }
        }
        if (sub === 'test') {
          const fixtures = option(args, '--fixtures');
          const lists = option(args, '--lists');
          const paths = args.slice(2).filter((arg, index, all) => !arg.startsWith('--') && all[index - 1] !== '--fixtures' && all[index - 1] !== '--lists');
          if ((paths.length === 0) !== (fixtures === undefined)) {
            console.error('usage: vigil rules test [PATH... --fixtures DIR,...] [--lists PATH,...]   (rules and their fixtures together, or neither: the shipped pack)');
            return 2;
          }
          try {
            return await runRuleTests({
              ...(paths.length > 0 ? { rules: paths } : {}),
              ...(fixtures !== undefined ? { fixtures: fixtures.split(',') } : {}),
              ...(lists !== undefined ? { lists: lists.split(',') } : {}),
            });
          } catch (error) {
            if (error instanceof RuleSetError) {
              printProblems(error);
              return 1;
            }
            if (error instanceof ValidationError) {
              console.error(`vigil rules test: ${error.message}`);
              return 1;
            }
            throw error;
          }
        }
        console.error('usage: vigil rules validate PATH... [--lists PATH,...] | vigil rules test [PATH... --fixtures DIR,...] | vigil rules coverage --from TIME --to TIME [--json]');
        return 2;
      }
      case 'replay': {
        const file = option(args, '--file');
        const from = option(args, '--from');
        const to = option(args, '--to');
        const rules = option(args, '--rules');
        const lists = option(args, '--lists');
        if (file === undefined && (from === undefined || to === undefined)) {
          console.error('usage: vigil replay --file EVENTS.ndjson | --from TIME --to TIME  [--rules PATH] [--lists PATH,...]');
          return 2;
        }
        // The times go to Elasticsearch as given, but are checked here first: Elasticsearch refused
        // a bad one only once a document matched, with a search error.
        if (file === undefined) {
          const bad = [from, to].find((time) => time !== undefined && !REPLAY_TIME.test(time.trim()));
          if (bad !== undefined) {
            // Ten digits are epoch seconds, which Elasticsearch reads as milliseconds: 1970.
            const seconds = bad !== undefined && /^\d{10}$/.test(bad.trim()) ? ` (${bad.trim()} looks like epoch seconds: write ${bad.trim()}000)` : '';
            console.error(`vigil replay: "${bad}" is not a time${seconds}: use ISO 8601 (2026-05-01T10:00:00Z; without a zone, UTC), epoch milliseconds, or date math (now, now-2h, now-1d/d)`);
            return 2;
          }
          const now = new Date();
          const [fromMs, toMs] = [replayTimeMs(from ?? '', now), replayTimeMs(to ?? '', now)];
          if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) {
            console.error(`vigil replay: --from (${from ?? ''}) must be before --to (${to ?? ''}): the range holds no event`);
            return 2;
          }
        }
        return await runReplay({ ...(file ? { file } : {}), ...(from ? { from } : {}), ...(to ? { to } : {}), ...(rules ? { rules: rules.split(',') } : {}), ...(lists ? { lists: lists.split(',') } : {}) });
      }
      case 'report': {
        const from = option(args, '--from');
        const to = option(args, '--to');
        const out = option(args, '--out');
        if (from === undefined || to === undefined || out === undefined) {
          console.error('usage: vigil report --from TIME --to TIME --out FILE.html   (TIME: ISO 8601, or now, now-15m, now-2h, now-1d)');
          return 2;
        }
        return await runReport({ from, to, out });
      }
      case 'topics':
        return await runTopics(args.slice(1), loadConfig());
      case 'dashboards':
        return await runDashboards(args.slice(1), loadConfig().indices.prefix);
      case 'deadletters':
        return await runDeadLetters(args.slice(1), () => ({ config: loadConfig() }));
      case 'notifications':
        return await runNotifications(args.slice(1), () => ({ config: loadConfig() }));
      case 'silences':
        return await runSilences(args.slice(1), () => ({ config: loadConfig() }));
      case 'evaluate':
        return await runEvaluate(args.slice(1));
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        console.log(USAGE);
        return 0;
      case '--version':
      case 'version':
        console.log(`vigil ${packageVersion()}`);
        return 0;
      default:
        console.error(`vigil: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    // bin/vigil.js prints the message of what escapes: a connection error may quote a cause
    // that holds a secret (a URL's password, a token a receiver echoed), which the logger scrubs
    // from log lines but nothing scrubbed here.
    if (error instanceof Error) error.message = scrubSecrets(error.message, configuredSecrets());
    throw error;
  }
}

/** The secrets of the environment's configuration; none when it does not load. */
function configuredSecrets(): string[] {
  try {
    return secretsOf(loadConfig(process.env));
  } catch {
    return [];
  }
}
