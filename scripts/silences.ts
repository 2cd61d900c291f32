/**
 * `vigil silences add|list|expire`: on-call mutes the notifications of matching alerts for a while
 * (a penetration test from known addresses, a load test on one endpoint), and lists or ends them.
 * The alerter reads them at every batch that changes alerts (detectors/alerting/silences.ts).
 */
import {
  DEFAULT_RULES_PATH,
  MAX_SILENCE_MS,
  RuleSetError,
  SilenceError,
  createSilenceStore,
  describeSilence,
  durationSchema,
  loadRuleSet,
  silenceInForce,
  silenceVocabularyOf,
  type SilenceVocabulary,
} from '../detectors';
import { createLogger, createRedis, errorMessage, requireConnections, secretsOf, type Config, type RedisClient } from '../platform';

/** The usage text of `vigil silences`. */
export const SILENCES_USAGE = `usage: vigil silences add --match FIELD=VALUE [--match FIELD=VALUE ...] [--rule ID] --for DURATION --comment TEXT
       vigil silences add --rule ID --for DURATION --comment TEXT
       vigil silences list
       vigil silences expire ID

A silence holds back the notifications of the alerts it matches, from now for DURATION (30s, 15m,
2h, 3d; at most 30d): each FIELD=VALUE must be in the alert's key or among its entities
(client.ip=203.0.113.7, actor.userId=u-17, invocation.route=/v1/login), and the rule, when given,
among its rules. Rule ids and fields are checked against the rules this configuration loads
(VIGIL_RULES_PATH, else the default pack): a typo would silence nothing. The alerts are still
opened, grouped and indexed; a resolve still closes a page opened before the silence. list shows
the silences, the ones in force first; expire ends one now.`;

/** A parsed `vigil silences` command line. */
export type SilencesCommand =
  | { command: 'add'; matchers: Record<string, string>; rule?: string; forMs: number; comment: string }
  | { command: 'list' }
  | { command: 'expire'; id: string };

/** A command line that does not parse: the message names what is wrong. */
export class SilencesUsageError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'SilencesUsageError';
  }
}

/** Parses the words after `vigil silences`; throws {@link SilencesUsageError} naming what is wrong. */
export function parseSilencesArgs(args: readonly string[]): SilencesCommand {
  const [command, ...rest] = args;
  if (command === 'list') {
    if (rest.length > 0) throw new SilencesUsageError(`list takes no arguments, not "${rest.join(' ')}"`);
    return { command };
  }
  if (command === 'expire') {
    const [id, ...extra] = rest;
    if (id === undefined || id.startsWith('-')) throw new SilencesUsageError('expire needs the id of a silence (vigil silences list shows them)');
    if (extra.length > 0) throw new SilencesUsageError(`expire takes one id, not "${rest.join(' ')}"`);
    return { command, id };
  }
  if (command !== 'add') throw new SilencesUsageError(command === undefined ? 'a subcommand is needed: add, list or expire' : `unknown subcommand "${command}"; use add, list or expire`);
  const matchers: Record<string, string> = {};
  let rule: string | undefined;
  let forText: string | undefined;
  let comment: string | undefined;
  for (let index = 0; index < rest.length; index += 2) {
    const option = rest[index] ?? '';
    const value = rest[index + 1];
    if (!['--match', '--rule', '--for', '--comment'].includes(option)) {
      throw new SilencesUsageError(option.startsWith('-') ? `unknown option ${option} for silences add` : `unexpected argument "${option}" for silences add`);
    }
    if (value === undefined || value.startsWith('--')) throw new SilencesUsageError(`${option} needs a value`);
    if (option === '--match') {
      const at = value.indexOf('=');
      if (at <= 0 || at === value.length - 1) throw new SilencesUsageError(`--match: expected FIELD=VALUE (client.ip=203.0.113.7), not "${value}"`);
      const field = value.slice(0, at);
      if (matchers[field] !== undefined) throw new SilencesUsageError(`--match: ${field} is given twice; an alert has one value of it`);
      matchers[field] = value.slice(at + 1);
    } else {
      const given = option === '--rule' ? rule : option === '--for' ? forText : comment;
      if (given !== undefined) throw new SilencesUsageError(`${option} is given twice`);
      if (option === '--rule') rule = value;
      else if (option === '--for') forText = value;
      else comment = value;
    }
  }
  if (Object.keys(matchers).length === 0 && rule === undefined) throw new SilencesUsageError('add needs at least one --match FIELD=VALUE or a --rule: a silence of everything would mute every page');
  if (forText === undefined) throw new SilencesUsageError('add needs --for DURATION (30s, 15m, 2h, 3d)');
  const duration = durationSchema.safeParse(forText);
  if (!duration.success) throw new SilencesUsageError(`--for: ${duration.error.issues[0]?.message ?? 'not a duration'}, not "${forText}"`);
  if (duration.data > MAX_SILENCE_MS) throw new SilencesUsageError(`--for: at most 30d, not ${forText}: a forgotten silence must end by itself`);
  if (comment === undefined || comment.trim() === '') throw new SilencesUsageError('add needs --comment TEXT: why, and who (shown by vigil silences list)');
  return { command, matchers, ...(rule === undefined ? {} : { rule }), forMs: duration.data, comment };
}

/** What `vigil silences` works with. */
export interface SilencesContext {
  config: Config;
  redis?: RedisClient;
  now?: () => number;
  out?: (line: string) => void;
  /** What a silence may name. @defaultValue the rules `config` loads ({@link configuredVocabulary}) */
  vocabulary?: SilenceVocabulary;
}

/**
 * What a silence may name under the rules `config` loads (as `vigil run` loads them). Undefined,
 * with a warning, when they can't be loaded: the check guards against typos, and on-call must
 * still be able to silence while a rule file is being fixed.
 */
export function configuredVocabulary(config: Config, warn: (line: string) => void): SilenceVocabulary | undefined {
  const paths = config.detection.rulesPaths ?? [DEFAULT_RULES_PATH];
  const source = config.detection.rulesPaths === undefined ? 'the default rule pack' : `the rules in ${paths.join(', ')} (VIGIL_RULES_PATH)`;
  try {
    return silenceVocabularyOf(loadRuleSet(paths, { lists: config.detection.listsPaths ?? [] }).rules, source);
  } catch (error) {
    const reason = error instanceof RuleSetError ? `${error.problems.length} problem(s), the first: ${error.problems[0]?.file ?? ''} ${error.problems[0]?.message ?? ''}` : errorMessage(error);
    warn(`vigil silences: ${source} could not be loaded (${reason}); the silence's rule and fields are not checked`);
    return undefined;
  }
}

/** `vigil silences ...`: returns the exit code (2 for a command line that does not parse, 1 for no such silence). */
export async function runSilences(args: readonly string[], contextOf: SilencesContext | (() => SilencesContext)): Promise<number> {
  if (args[0] === 'help' || args.some((arg) => arg === '--help' || arg === '-h')) {
    console.log(SILENCES_USAGE);
    return 0;
  }
  let command: SilencesCommand;
  try {
    command = parseSilencesArgs(args);
  } catch (error) {
    if (!(error instanceof SilencesUsageError)) throw error;
    console.error(`vigil silences: ${error.message}\n\n${SILENCES_USAGE}`);
    return 2;
  }
  const context = typeof contextOf === 'function' ? contextOf() : contextOf;
  const { config } = context;
  const out = context.out ?? ((line: string) => console.log(line));
  const now = (context.now ?? Date.now)();
  const redis = context.redis ?? createRedis(config, createLogger({ level: 'warn', secrets: secretsOf(config) }));
  try {
    // Redis away or refusing: one line naming it and the setting to check.
    await requireConnections(config, { redis });
    const store = createSilenceStore(redis, config.redis.prefix);
    if (command.command === 'add') {
      try {
        const silence = await store.add(command, now, context.vocabulary ?? configuredVocabulary(config, (line) => console.error(line)));
        out(`silence ${silence.id}: notifications of matching alerts held back until ${silence.endsAt}`);
        out(`  ${describeSilence(silence, now)}`);
        return 0;
      } catch (error) {
        if (!(error instanceof SilenceError)) throw error;
        console.error(`vigil silences: ${error.message}`);
        return 2;
      }
    }
    if (command.command === 'list') {
      const silences = await store.list(now);
      out(`${silences.filter((silence) => silenceInForce(silence, now)).length} silences in force, ${silences.length} kept (ended ones for 7 days)`);
      for (const silence of silences) out(`  ${describeSilence(silence, now)}`);
      return 0;
    }
    if (await store.expire(command.id, now)) {
      out(`silence ${command.id} ended: matching alerts are notified again from their next change`);
      return 0;
    }
    console.error(`vigil silences: no silence ${command.id} in force (vigil silences list shows them)`);
    return 1;
  } finally {
    if (context.redis === undefined) redis.disconnect();
  }
}
