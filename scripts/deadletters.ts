import { createHash, randomBytes } from 'node:crypto';
import type { Batch, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import {
  DEAD_LETTER_REASONS,
  fromDeadLetterMessage,
  toRedriveMessage,
  valueDigest,
  type DeadLetterPosition,
  type DeadLetterReason,
  type DeadLetterRecord,
} from '../ingest';
import { VigilError, createKafka, createLogger, createProducer, requireConnections, secretsOf, sendBatches, type Config, type Logger } from '../platform';
import { calendarDate, escapeBytes, terminalText } from './cli-text';

/** How many times one message may be sent back before `--force` is needed. */
export const MAX_REDRIVES = 3;

/** A command line `vigil deadletters` refuses: the message names the option at fault. */
export class DeadLetterUsageError extends VigilError {
  constructor(message: string) {
    super(message, { code: 'usage', retriable: false });
    this.name = 'DeadLetterUsageError';
  }
}

/** Which dead letters a command works on; every criterion given must hold (none: all of them). */
export interface Selection {
  /** Reason codes; empty means any. */
  reasons: DeadLetterReason[];
  /** Dead-lettered at or after (ms since the epoch). */
  from?: number;
  /** Dead-lettered at or before (ms since the epoch). */
  to?: number;
  /**
   * Positions, `topic:partition:offset`: a dead letter's own place in the dead-letter topic, or
   * the source position it names (its key). Empty means any.
   */
  offsets: string[];
}

/** A parsed `vigil deadletters` command line. */
export type DeadLetterCommand =
  | { command: 'list'; selection: Selection }
  | {
      command: 'show';
      selection: Selection;
      /** @defaultValue 20 */
      limit: number;
      /** Bytes of each original value printed. @defaultValue 512 */
      maxBytes: number;
      /** Credentials in the values printed as they are (`--unredacted`). @defaultValue false */
      unredacted: boolean;
    }
  | {
      command: 'redrive';
      selection: Selection;
      dryRun: boolean;
      force: boolean;
      /** Raw topics `vigil adapt` reads, named with `--raw-topic`: where its refusals may go back. */
      rawTopics: string[];
    };

/** The usage text of `vigil deadletters`. */
export const DEAD_LETTER_USAGE = `usage: vigil deadletters list [SELECTION]
       vigil deadletters show [SELECTION] [--limit N] [--max-bytes N] [--unredacted]
       vigil deadletters redrive SELECTION [--dry-run] [--force] [--raw-topic T]

selection (all given must hold; redrive needs at least one):
  --reason CODE            a reason code (repeatable, or comma-separated): ${DEAD_LETTER_REASONS.join(', ')}
  --from TIME --to TIME    dead-lettered in this range (ISO 8601, or now-N followed by s, m, h or d)
  --offset TOPIC:P:OFFSET  a dead letter's position, or the source position it names (repeatable;
                           TOPIC/P/OFFSET as show prints it also works)
show:
  --limit N                print the first N messages by position (default 20)
  --max-bytes N            print at most N bytes of each original value (default 512)
  --unredacted             print credentials in the values as they are (by default the values of
                           authorization, cookie, API key, token, password and secret fields and
                           query parameters are shown as [redacted]: a gateway's raw record holds them;
                           a value that is not UTF-8 text is withheld)
redrive:
  --dry-run                report what would be sent, send nothing
  --force                  also send messages already redriven ${MAX_REDRIVES} times
  --raw-topic T            a raw topic \`vigil adapt\` reads (repeatable, or comma-separated): its
                           refusals go back there to be adapted again (VIGIL_INTAKE_TOPIC needs none)`;

/** Kafka's topic names (its own limit is 249 characters). */
const KAFKA_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
const RELATIVE_TIME = /^now(?:-(\d{1,9})([smhd]))?$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
// A date, or a date-time with an explicit zone: a zoneless time would depend on the host's zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Reads a `--from`/`--to` value: ISO 8601 (a date, or a date-time with its zone), `now` or `now-N<s|m|h|d>`. */
export function parseTime(option: string, text: string, now: Date): number {
  const relative = RELATIVE_TIME.exec(text);
  if (relative) {
    const [, amount, unit] = relative;
    return now.getTime() - (amount && unit ? Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS] : 0);
  }
  const time = ISO_TIME.test(text) && calendarDate(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new DeadLetterUsageError(`${option}: "${text}" is not a time; use ISO 8601 with a zone (2026-11-27T10:00:00Z, 2026-11-27) or now-N followed by s, m, h or d (now-2h)`);
  }
  return time;
}

/** A position as `--offset` takes it: TOPIC:PARTITION:OFFSET, or TOPIC/PARTITION/OFFSET as `show` and `redrive` print it. */
const POSITION = /^([A-Za-z0-9._-]{1,249})([:/])(\d{1,9})\2(\d{1,19})$/;

function parsePosition(text: string): string {
  const match = POSITION.exec(text);
  if (!match) throw new DeadLetterUsageError(`--offset: "${text}" is not TOPIC:PARTITION:OFFSET (e.g. vigil.deadletter:0:42, vigil.events.policy:2:1187, or vigil.deadletter/0/42 as show prints it)`);
  // Normalised, so 007 and 7 name the same offset, and either separator the same position.
  return `${match[1]}:${Number(match[3])}:${BigInt(match[4] ?? '0').toString()}`;
}

function positiveInteger(option: string, text: string, max: number): number {
  const value = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 1 && value <= max)) throw new DeadLetterUsageError(`${option}: "${text}" is not an integer from 1 to ${max}`);
  return value;
}

const OPTIONS = {
  list: ['--reason', '--from', '--to', '--offset'],
  show: ['--reason', '--from', '--to', '--offset', '--limit', '--max-bytes', '--unredacted'],
  redrive: ['--reason', '--from', '--to', '--offset', '--dry-run', '--force', '--raw-topic'],
} as const;
const FLAGS = new Set(['--dry-run', '--force', '--unredacted']);

/**
 * Refuses an option of one value given a second time, and notes it as given: only one would be
 * read, so `--from now-1h --from now-30d` would cover a range no one asked for without a word.
 * @throws DeadLetterUsageError `<option> is given twice`
 */
export function refuseRepeated(given: Set<string>, option: string): void {
  if (given.has(option)) throw new DeadLetterUsageError(`${option} is given twice`);
  given.add(option);
}

/** Parses the words after `vigil deadletters`; throws {@link DeadLetterUsageError} naming what is wrong. */
export function parseDeadLetterArgs(args: readonly string[], now: Date = new Date()): DeadLetterCommand {
  const [command, ...rest] = args;
  if (command !== 'list' && command !== 'show' && command !== 'redrive') {
    throw new DeadLetterUsageError(command === undefined ? 'a subcommand is needed: list, show or redrive' : `unknown subcommand "${command}"; use list, show or redrive`);
  }
  const allowed: readonly string[] = OPTIONS[command];
  const selection: Selection = { reasons: [], offsets: [] };
  const seen = new Set<string>();
  let limit = 20;
  let maxBytes = 512;
  let dryRun = false;
  let force = false;
  let unredacted = false;
  const rawTopics: string[] = [];
  for (let index = 0; index < rest.length; index++) {
    const option = rest[index] ?? '';
    if (!allowed.includes(option)) {
      throw new DeadLetterUsageError(option.startsWith('-') ? `unknown option ${option} for deadletters ${command}` : `unexpected argument "${option}" for deadletters ${command}`);
    }
    if (FLAGS.has(option)) {
      if (option === '--dry-run') dryRun = true;
      else if (option === '--unredacted') unredacted = true;
      else force = true;
      continue;
    }
    const value = rest[index + 1];
    if (value === undefined || value.startsWith('--')) throw new DeadLetterUsageError(`${option} needs a value`);
    index++;
    if (option === '--from' || option === '--to' || option === '--limit' || option === '--max-bytes') refuseRepeated(seen, option);
    switch (option) {
      case '--reason':
        for (const reason of value.split(',')) {
          if (!(DEAD_LETTER_REASONS as readonly string[]).includes(reason)) {
            throw new DeadLetterUsageError(`--reason: "${reason}" is not a reason code (${DEAD_LETTER_REASONS.join(', ')})`);
          }
          if (!selection.reasons.includes(reason as DeadLetterReason)) selection.reasons.push(reason as DeadLetterReason);
        }
        break;
      case '--from':
        selection.from = parseTime(option, value, now);
        break;
      case '--to':
        selection.to = parseTime(option, value, now);
        break;
      case '--offset':
        selection.offsets.push(parsePosition(value));
        break;
      case '--limit':
        limit = positiveInteger(option, value, 1_000_000);
        break;
      case '--max-bytes':
        maxBytes = positiveInteger(option, value, 100 * 1024 * 1024);
        break;
      case '--raw-topic':
        for (const topic of value.split(',')) {
          if (!KAFKA_TOPIC.test(topic)) throw new DeadLetterUsageError(`--raw-topic: "${text(topic)}" is not a Kafka topic name (1-249 of letters, digits, ".", "_", "-")`);
          if (topic.startsWith('_')) throw new DeadLetterUsageError(`--raw-topic: "${topic}" starts with "_", a name Kafka and its tools keep for their own topics`);
          if (!rawTopics.includes(topic)) rawTopics.push(topic);
        }
        break;
    }
  }
  if (selection.from !== undefined && selection.to !== undefined && selection.from > selection.to) {
    throw new DeadLetterUsageError('--from is after --to');
  }
  if (command === 'list') return { command, selection };
  if (command === 'show') return { command, selection, limit, maxBytes, unredacted };
  // Redriving the whole topic by accident would replay every bad message ever seen.
  if (selection.reasons.length === 0 && selection.from === undefined && selection.to === undefined && selection.offsets.length === 0) {
    throw new DeadLetterUsageError('redrive needs a selection: --reason, --from/--to or --offset');
  }
  return { command, selection, dryRun, force, rawTopics };
}

/** One consumed dead letter: where it sits and what it says. */
export interface DeadLetterEntry {
  position: DeadLetterPosition;
  record: DeadLetterRecord;
  /** When it was dead-lettered (ms): its header, or the Kafka timestamp if that is unreadable. */
  time: number;
}

/** The source position a dead letter names: its key, and its identity (see dead-letters.md). */
export function sourcePosition(record: DeadLetterRecord): string {
  return `${record.topic}:${record.partition}:${record.offset}`;
}

/** Whether a dead letter is selected. */
export function selects(selection: Selection, entry: DeadLetterEntry): boolean {
  if (selection.reasons.length > 0 && !selection.reasons.includes(entry.record.reasonCode)) return false;
  if (selection.from !== undefined && !(entry.time >= selection.from)) return false;
  if (selection.to !== undefined && !(entry.time <= selection.to)) return false;
  if (selection.offsets.length > 0) {
    const own = `${entry.position.topic}:${entry.position.partition}:${entry.position.offset}`;
    if (!selection.offsets.includes(own) && !selection.offsets.includes(sourcePosition(entry.record))) return false;
  }
  return true;
}

/** Why a selected dead letter is not sent back. */
export type SkipReason = 'no_value' | 'not_an_event_topic' | 'already_selected' | 'redriven_since' | 'redrive_limit' | 'original_unavailable' | 'topic_missing';

/**
 * Skips an operator can act on (keep the original longer, recreate the topic, look at why it
 * keeps failing), which make a redrive exit 1. The others can't be acted on: the same position
 * twice, redriven since, no bytes to send, a source that is no event topic.
 */
const ACT_ON_SKIPS: ReadonlySet<SkipReason> = new Set(['redrive_limit', 'original_unavailable', 'topic_missing']);

/** What a redrive sends and leaves. */
export interface RedrivePlan {
  send: { entry: DeadLetterEntry; topic: string }[];
  skipped: { entry: DeadLetterEntry; reason: SkipReason; detail: string }[];
}

/** Appends `value` to the list `map` holds under `key`, in place (copying the list each time is quadratic). */
function pushInto<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Decides, without I/O, which selected dead letters go back: not one without a value (nothing to
 * validate), not one whose source isn't an event topic of this configuration (it would go nowhere
 * the pipeline reads), each source position once (the same dead letter written twice by a redone
 * chunk), and not one already redriven `maxRedrives` times unless forced.
 */
export function planRedrive(
  entries: readonly DeadLetterEntry[],
  options: {
    eventTopics: readonly string[];
    rawTopics?: readonly string[];
    internalTopics?: readonly string[];
    force: boolean;
    maxRedrives?: number;
    /**
     * Every dead letter a later one names as its origin (`topic/partition/offset` of the earlier
     * one -> the later one's), from the whole topic, not only the selection: a selection by
     * reason or time may hold the earlier letter and not the later. @defaultValue from `entries`
     */
    redrivenSince?: ReadonlyMap<string, string>;
    /**
     * The source positions a later dead letter stands for (source -> the later one), from the
     * whole topic: a copy of a message selected while the copy a later letter names is not.
     * @defaultValue from `entries` and `redrivenSince`
     */
    stoodFor?: ReadonlyMap<string, string>;
    /**
     * Every dead letter of the topic as the redrive trail sees it (`topic/partition/offset` ->
     * {@link TrailLetter}), to follow a letter's chain of redrives to its first letter.
     * @defaultValue from `entries`
     */
    trail?: ReadonlyMap<string, TrailLetter>;
  },
): RedrivePlan {
  const maxRedrives = options.maxRedrives ?? MAX_REDRIVES;
  const plan: RedrivePlan = { send: [], skipped: [] };
  /** Source positions decided: sent, or stood for by a later dead letter. */
  const chosen = new Map<string, string>();
  // A dead letter that a later one names as its origin was redriven and refused again: the later
  // one stands for the message (with its redrive count). Sending both would double the message at
  // every run while its cause is not fixed, and restart its count.
  const redrivenSince = options.redrivenSince ?? laterLettersOf(entries);
  // The source positions a later letter stands for, decided before any is planned: a copy of one
  // (a redone chunk wrote it twice) must not go back for coming before the copy the later names.
  for (const [source, later] of options.stoodFor ?? []) chosen.set(source, `the later dead letter ${later} stands for it`);
  // A redrive run twice before the pipeline refused the first copy leaves two later letters that
  // name one origin, each at its own source position: one message, sent once. Sends are decided
  // by the chain's first letter (root -> the letter sent for it).
  const roots = chainRootsOf(options.trail ?? trailOf(entries), entries.map(({ position }) => letterAt(position)));
  const sentRoots = new Map<string, string>();
  for (const { record, position } of entries) {
    const later = redrivenSince.get(letterAt(position));
    if (later !== undefined) chosen.set(sourcePosition(record), `the later dead letter ${later} stands for it`);
  }
  for (const entry of entries) {
    const { record } = entry;
    const source = sourcePosition(record);
    const at = letterAt(entry.position);
    const root = roots.get(at) ?? `source ${source}`;
    // Event topics, and the raw topics gateways' records wait on: a record `vigil adapt` refused
    // goes back to its raw topic, to be adapted again once the map is fixed. A raw topic is one
    // the operator names (the intake's, `--raw-topic`), never one taken from the dead letter: the
    // source topic is a header, and a forged dead letter must not make a redrive write where it
    // names (detections, pages, another team's topic). Vigil's own others and `_`-prefixed topics
    // (Kafka's own, `__consumer_offsets`, and its ecosystem's, `_schemas`) are refused even if named.
    const internal = (options.internalTopics ?? []).includes(record.topic) || record.topic.startsWith('_');
    const redrivable = !internal && (options.eventTopics.includes(record.topic) || (options.rawTopics ?? []).includes(record.topic));
    const adapterRefusal = record.reasonCode.startsWith('adapter_');
    if (record.value === null || record.value.length === 0) {
      plan.skipped.push({ entry, reason: 'no_value', detail: 'the original message had no value' });
    } else if (!redrivable) {
      plan.skipped.push({
        entry,
        reason: 'not_an_event_topic',
        detail:
          adapterRefusal && !internal
            ? `source topic "${text(record.topic)}" is not an event topic or a named raw topic: if \`vigil adapt\` reads it, name it with --raw-topic ${text(record.topic)}`
            : `source topic "${text(record.topic)}" is not an event topic or raw topic of this configuration`,
      });
    } else if (redrivenSince.has(at)) {
      const later = redrivenSince.get(at) ?? '';
      plan.skipped.push({ entry, reason: 'redriven_since', detail: `redriven before, and refused again: the later dead letter ${later} names ${at} as its origin (select that one)` });
    } else if (chosen.has(source)) {
      plan.skipped.push({ entry, reason: 'already_selected', detail: `another dead letter of ${source} is decided: ${chosen.get(source) ?? ''}` });
    } else if (sentRoots.has(root)) {
      plan.skipped.push({ entry, reason: 'already_selected', detail: `another dead letter redriven from the same first dead letter is sent: ${sentRoots.get(root) ?? ''}` });
    } else if ((record.redrive?.count ?? 0) >= maxRedrives && !options.force) {
      plan.skipped.push({ entry, reason: 'redrive_limit', detail: `redriven ${record.redrive?.count ?? 0} times already; --force sends it again` });
    } else {
      chosen.set(source, 'it is sent');
      sentRoots.set(root, at);
      plan.send.push({ entry, topic: record.topic });
    }
  }
  return plan;
}

/** The dead letters later ones name as their origin (`topic/partition/offset` -> the later one's). */
export function laterLettersOf(entries: readonly Pick<DeadLetterEntry, 'position' | 'record'>[]): Map<string, string> {
  return laterLetters(trailOf(entries));
}

/** A dead letter as the redrive trail sees it: small text, no value. */
export interface TrailLetter {
  /** The source position it holds (`topic:partition:offset`). */
  source: string;
  /** Its message's {@link originalDigest}. */
  digest: string;
  /** The dead letter it names as its origin (`vigil-redriven-from`), when it was a redrive. */
  from?: string;
}

/** Dead letters as the trail sees them, by position (`topic/partition/offset`). */
export function trailOf(entries: Iterable<Pick<DeadLetterEntry, 'position' | 'record'>>): Map<string, TrailLetter> {
  const trail = new Map<string, TrailLetter>();
  for (const { record, position } of entries) trail.set(letterAt(position), trailLetter(record));
  return trail;
}

function trailLetter(record: DeadLetterRecord): TrailLetter {
  return { source: sourcePosition(record), digest: originalDigest(record), ...(record.redrive ? { from: record.redrive.from } : {}) };
}

/**
 * The origins later letters name, kept only where both hold the same message (see
 * {@link originalDigest}): earlier position -> the later one's (the last met, if several).
 */
function laterLetters(trail: ReadonlyMap<string, TrailLetter>): Map<string, string> {
  const later = new Map<string, string>();
  for (const [at, letter] of trail) {
    if (letter.from !== undefined && trail.get(letter.from)?.digest === letter.digest) later.set(letter.from, at);
  }
  return later;
}

/**
 * Each wanted letter's chain root: the trail followed back (only through origins that hold the
 * same message) to its first letter, named by that letter's source position. A first letter
 * that itself names an origin no longer there (retention deleted it) or holding another message
 * is named by that origin and its message, so a forged trail joins no real chain.
 */
export function chainRootsOf(trail: ReadonlyMap<string, TrailLetter>, wanted: Iterable<string>): Map<string, string> {
  const roots = new Map<string, string>();
  for (const start of wanted) {
    const path: string[] = [];
    const seen = new Set<string>();
    let at = start;
    let root: string | undefined;
    for (;;) {
      const known = roots.get(at);
      if (known !== undefined) {
        root = known;
        break;
      }
      const letter = trail.get(at);
      path.push(at);
      seen.add(at);
      if (letter === undefined) {
        root = `letter ${at}`;
        break;
      }
      const origin = letter.from === undefined ? undefined : trail.get(letter.from);
      if (letter.from !== undefined && origin?.digest === letter.digest && !seen.has(letter.from)) {
        at = letter.from;
        continue;
      }
      root = letter.from === undefined ? `source ${letter.source}` : `origin ${letter.from} ${letter.digest}`;
      break;
    }
    for (const step of path) roots.set(step, root);
  }
  return roots;
}

/**
 * What identifies a dead letter's original message: its key and its value's SHA-256 (the one
 * recorded for a truncated value). A later letter stands for an earlier one only when they hold
 * the same message: the trail is a header any producer of an event topic can write, and a forged
 * `vigil-redriven-from` made a redrive skip the real letter and send the forger's.
 */
export function originalDigest(record: Pick<DeadLetterRecord, 'originalKey' | 'value' | 'truncated'>): string {
  const value = record.truncated?.sha256 ?? (record.value === null ? '' : createHash('sha256').update(record.value).digest('hex'));
  const key = record.originalKey === null ? '' : createHash('sha256').update(record.originalKey).digest('hex');
  return `${key}:${value}`;
}

/** Options of {@link scanDeadLetters}. */
export interface ScanOptions {
  /** Give up when no message arrives for this long while some remain. @defaultValue 30000 */
  idleTimeoutMs?: number;
}

/**
 * Reads the dead-letter topic from its first retained offset to the end offsets it has when the
 * scan starts, calls `visit` for each dead letter in partition order, and stops. It commits
 * nothing: the throwaway group it joins has no offsets and is deleted at the end, so a scan
 * leaves no trace and never competes with anyone. Returns the end offsets it read to.
 */
export async function scanDeadLetters(kafka: Kafka, topic: string, visit: (entry: DeadLetterEntry) => void, options: ScanOptions = {}): Promise<Map<number, string>> {
  return scanToEnd(
    kafka,
    topic,
    (message, partition) => {
      const record = fromDeadLetterMessage({ value: message.value, ...(message.headers ? { headers: message.headers } : {}) });
      const stamped = Date.parse(record.deadLetteredAt);
      visit({ position: { topic, partition, offset: message.offset }, record, time: Number.isNaN(stamped) ? Number(message.timestamp) : stamped });
    },
    options,
    `the dead-letter topic "${topic}" does not exist: nothing was dead-lettered yet, or VIGIL_TOPIC_DEADLETTER names another topic`,
  );
}

/**
 * Reads every message of `topic` up to the end offsets it has when the scan begins, in a throwaway
 * consumer group deleted after, and hands each to `visit` with its partition.
 * @returns the end offsets, per partition
 * @throws VigilError `deadletter_topic_missing` (with `missing` as its message) when the topic does not exist
 */
export async function scanToEnd(kafka: Kafka, topic: string, visit: (message: KafkaMessage, partition: number) => void, options: ScanOptions, missing: string): Promise<Map<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `vigil-deadletters-${randomBytes(6).toString('hex')}`;
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      throw new VigilError(missing, { code: 'deadletter_topic_missing', retriable: false });
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    const ends = new Map(offsets.map(({ partition, high }) => [partition, high]));
    // A partition is done once its message at end - 1 is read; an empty one is done already.
    const remaining = new Set(offsets.filter(({ low, high }) => BigInt(high) > BigInt(low)).map(({ partition }) => partition));
    if (remaining.size === 0) return ends;
    const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    await consumeUntilDone(kafka, groupId, topic, {
      // A scan that stalls short of the end offsets is an error: the summary would be partial.
      onIdle: () => new VigilError(`reading ${topic}: nothing arrived for ${idleTimeoutMs} ms with partitions ${[...remaining].join(', ')} not read to their end`, { code: 'deadletter_scan_stalled', retriable: true }),
      idleTimeoutMs,
      eachBatch: (batch) => {
        const end = BigInt(ends.get(batch.partition) ?? '0');
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          if (offset >= end) break; // written after the scan began
          visit(message, batch.partition);
          if (offset >= end - 1n) remaining.delete(batch.partition);
        }
        return remaining.size === 0;
      },
    });
    return ends;
  } finally {
    // The group never committed, but deleting it leaves no trace at all (and no lag alarm).
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** A source position, `topic:partition:offset`, mapped to the message found there (null: none). */
export type Originals = Map<string, Buffer | null>;

/**
 * Reads the messages at the given source positions (the whole messages truncated dead letters
 * stand for), seeking each partition to the first position wanted and reading on to the last.
 * A position retention has deleted, or that holds no message, maps to null. Like a scan, it
 * commits nothing and deletes its throwaway group.
 */
export async function readOriginals(kafka: Kafka, positions: readonly { topic: string; partition: number; offset: string }[], options: ScanOptions = {}): Promise<Originals> {
  const found: Originals = new Map();
  const wanted = new Map<string, Map<number, bigint[]>>();
  for (const { topic, partition, offset } of positions) {
    found.set(`${topic}:${partition}:${offset}`, null);
    const partitions = wanted.get(topic) ?? new Map<number, bigint[]>();
    pushInto(partitions, partition, BigInt(offset));
    wanted.set(topic, partitions);
  }
  if (wanted.size === 0) return found;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `vigil-deadletters-${randomBytes(6).toString('hex')}`;
  try {
    const topics = await admin.listTopics();
    for (const [topic, partitions] of wanted) {
      if (!topics.includes(topic)) continue;
      // Only what the partition still holds: below its low watermark, retention deleted it.
      const ranges = await admin.fetchTopicOffsets(topic);
      const pending = new Map<number, bigint[]>();
      for (const [partition, offsets] of partitions) {
        const range = ranges.find((candidate) => candidate.partition === partition);
        if (!range) continue;
        const inRange = offsets.filter((offset) => offset >= BigInt(range.low) && offset < BigInt(range.high)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        if (inRange.length > 0) pending.set(partition, inRange);
      }
      if (pending.size === 0) continue;
      await readPartitions(kafka, groupId, topic, pending, ranges.map(({ partition }) => partition), found, options.idleTimeoutMs ?? 10_000);
    }
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
  return found;
}

async function readPartitions(kafka: Kafka, groupId: string, topic: string, pending: Map<number, bigint[]>, all: readonly number[], found: Originals, idleTimeoutMs: number): Promise<void> {
  await consumeUntilDone(kafka, groupId, topic, {
    // A position that never comes (a gap the log has there) ends the read when nothing arrives.
    onIdle: () => undefined,
    idleTimeoutMs,
    started: (consumer) => {
      consumer.pause([{ topic, partitions: all.filter((partition) => !pending.has(partition)) }]);
      for (const [partition, offsets] of pending) consumer.seek({ topic, partition, offset: String(offsets[0]) });
    },
    eachBatch: (batch, consumer) => {
      const offsets = pending.get(batch.partition);
      if (!offsets) return false;
      for (const message of batch.messages) {
        const offset = BigInt(message.offset);
        // Wanted positions passed without a message there hold none (compacted, a marker).
        while (offsets.length > 0 && (offsets[0] ?? offset) < offset) offsets.shift();
        if (offsets[0] === offset) {
          found.set(`${topic}:${batch.partition}:${message.offset}`, message.value);
          offsets.shift();
        }
        if (offsets.length === 0) break;
      }
      if (offsets.length === 0) {
        pending.delete(batch.partition);
        consumer.pause([{ topic, partitions: [batch.partition] }]);
      }
      return pending.size === 0;
    },
  });
}

/** What {@link consumeUntilDone} does with each batch, and when it stops. */
interface UntilDone {
  /** Reads one batch; true when the read is complete. */
  eachBatch(batch: Batch, consumer: Consumer): boolean;
  /** Runs once the consumer runs (seeks and pauses go here). */
  started?(consumer: Consumer): void;
  /** Nothing arrived for this long: the read ends, failing with the error returned, if any. */
  idleTimeoutMs: number;
  onIdle(): Error | undefined;
}

/**
 * The read loop of the dead-letter commands: a throwaway group's consumer (nothing committed)
 * reads a topic from its start until `eachBatch` says it is done, or until nothing arrives for
 * the idle timeout. The scan and the read at source positions differ only in their stop rule.
 */
async function consumeUntilDone(kafka: Kafka, groupId: string, topic: string, until: UntilDone): Promise<void> {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let finish: (error?: Error) => void = () => undefined;
    const finished = new Promise<void>((resolve, reject) => {
      finish = (error) => (error ? reject(error) : resolve());
    });
    let idle = setTimeout(() => undefined, 0);
    const armIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => finish(until.onIdle()), until.idleTimeoutMs);
    };
    armIdle();
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        armIdle();
        if (until.eachBatch(batch, consumer)) finish();
        return Promise.resolve();
      },
    });
    until.started?.(consumer);
    try {
      await finished;
    } finally {
      clearTimeout(idle);
    }
  } finally {
    await consumer.disconnect();
  }
}

/**
 * Gives the planned dead letters that hold only the first bytes of their message the whole
 * message back, read from its source position and checked against the size and SHA-256 the
 * dead letter recorded. One that can't be had (retention deleted it, or what is there now is
 * another message) is skipped with the reason; the rest are unaffected.
 */
export async function restoreTruncated(kafka: Kafka, plan: RedrivePlan, options: ScanOptions = {}): Promise<RedrivePlan> {
  const truncated = plan.send.filter(({ entry }) => entry.record.truncated);
  if (truncated.length === 0) return plan;
  const originals = await readOriginals(kafka, truncated.map(({ entry }) => entry.record), options);
  const restored: RedrivePlan = { send: [], skipped: [...plan.skipped] };
  for (const planned of plan.send) {
    const { record } = planned.entry;
    if (!record.truncated) {
      restored.send.push(planned);
      continue;
    }
    const source = sourcePosition(record);
    const original = originals.get(source) ?? null;
    const kept = `the dead letter keeps only the first ${record.value?.length ?? 0} of its ${record.truncated.bytes} bytes`;
    if (original === null) {
      restored.skipped.push({ entry: planned.entry, reason: 'original_unavailable', detail: `${source} no longer holds the message (retention deleted it); ${kept}` });
    } else if (original.length !== record.truncated.bytes || valueDigest(original) !== record.truncated.sha256) {
      restored.skipped.push({ entry: planned.entry, reason: 'original_unavailable', detail: `${source} holds another message than the one dead-lettered (SHA-256 differs); ${kept}` });
    } else {
      const whole: DeadLetterRecord = { ...record, value: original };
      delete whole.truncated;
      restored.send.push({ ...planned, entry: { ...planned.entry, record: whole } });
    }
  }
  return restored;
}

/** One reason's line in {@link DeadLetterSummary}. */
export interface ReasonSummary {
  reasonCode: DeadLetterReason;
  /** Dead-letter messages. */
  count: number;
  /** Distinct source positions (a redone chunk writes the same dead letter twice). */
  distinct: number;
  oldest: number;
  newest: number;
  /** Messages per source topic. */
  sourceTopics: Record<string, number>;
  /** Of these, messages that had been redriven and failed again. */
  redriven: number;
}

/** What `vigil deadletters list` reports. */
export interface DeadLetterSummary {
  topic: string;
  /** The end offset read to, per partition. */
  ends: Record<number, string>;
  total: number;
  byReason: ReasonSummary[];
}

/** Folds dead letters into counts by reason (pure; the order of `byReason` is the codes' order). */
export function summarise(topic: string, entries: Iterable<DeadLetterEntry>, ends: Map<number, string> = new Map()): DeadLetterSummary {
  const byReason = new Map<DeadLetterReason, ReasonSummary & { sources: Set<string> }>();
  let total = 0;
  for (const { record, time } of entries) {
    total++;
    const summary = byReason.get(record.reasonCode) ?? {
      reasonCode: record.reasonCode,
      count: 0,
      distinct: 0,
      oldest: time,
      newest: time,
      sourceTopics: {},
      redriven: 0,
      sources: new Set<string>(),
    };
    summary.count++;
    summary.sources.add(sourcePosition(record));
    summary.distinct = summary.sources.size;
    summary.oldest = Math.min(summary.oldest, time);
    summary.newest = Math.max(summary.newest, time);
    summary.sourceTopics[record.topic] = (summary.sourceTopics[record.topic] ?? 0) + 1;
    if (record.redrive) summary.redriven++;
    byReason.set(record.reasonCode, summary);
  }
  const order = (code: string): number => {
    const position = (DEAD_LETTER_REASONS as readonly string[]).indexOf(code);
    return position < 0 ? DEAD_LETTER_REASONS.length : position;
  };
  return {
    topic,
    ends: Object.fromEntries(ends),
    total,
    byReason: [...byReason.values()].sort((a, b) => order(a.reasonCode) - order(b.reasonCode) || a.reasonCode.localeCompare(b.reasonCode)).map(({ sources: _sources, ...summary }) => summary),
  };
}

/** What the commands need: the configuration, and a Kafka client (made from it when absent). */
export interface DeadLetterContext {
  config: Config;
  kafka?: Kafka;
  logger?: Logger;
  /** Where the report lines go. @defaultValue console.log */
  out?: (line: string) => void;
  scan?: ScanOptions;
}

function kafkaOf(context: DeadLetterContext): Kafka {
  return context.kafka ?? createKafka(context.config, context.logger ?? createLogger({ level: 'warn', secrets: secretsOf(context.config) }), `${context.config.kafka.clientId}-deadletters`);
}

/** Position order: by partition, then offset. */
function byPosition(a: DeadLetterEntry, b: DeadLetterEntry): number {
  return a.position.partition - b.position.partition || Number(BigInt(a.position.offset) - BigInt(b.position.offset));
}

/**
 * Reads the selected dead letters, in partition and offset order: with a `limit`, the first
 * `limit` of them in that order (partitions arrive interleaved: the first to arrive are not
 * those). `redrivenSince` is read from every dead letter, selected or not (see {@link planRedrive}).
 */
export async function readDeadLetters(
  context: DeadLetterContext,
  selection: Selection,
  limit = Number.POSITIVE_INFINITY,
): Promise<{ entries: DeadLetterEntry[]; ends: Map<number, string>; matched: number; redrivenSince: Map<string, string>; stoodFor: Map<string, string>; trail: Map<string, TrailLetter> }> {
  const entries: DeadLetterEntry[] = [];
  /** Every dead letter, selected or not, as the trail sees it (small text: the values are not kept). */
  const trail = new Map<string, TrailLetter>();
  let matched = 0;
  let sorted = false;
  const ends = await scanDeadLetters(
    kafkaOf(context),
    context.config.topics.deadLetter,
    (entry) => {
      trail.set(letterAt(entry.position), trailLetter(entry.record));
      if (!selects(selection, entry)) return;
      matched++;
      if (entries.length < limit) {
        entries.push(entry);
        return;
      }
      // Full: kept, in order, only if it comes before the last kept, which then goes (values may be large).
      if (!sorted) {
        entries.sort(byPosition);
        sorted = true;
      }
      const last = entries[entries.length - 1];
      if (last === undefined || byPosition(entry, last) >= 0) return;
      let low = 0;
      let high = entries.length - 1;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (byPosition(entries[middle] as DeadLetterEntry, entry) < 0) low = middle + 1;
        else high = middle;
      }
      entries.splice(low, 0, entry);
      entries.pop();
    },
    context.scan,
  );
  entries.sort(byPosition);
  const redrivenSince = laterLetters(trail);
  const stoodFor = new Map<string, string>();
  for (const [origin, later] of redrivenSince) {
    const source = trail.get(origin)?.source;
    if (source !== undefined) stoodFor.set(source, later);
  }
  return { entries, ends, matched, redrivenSince, stoodFor, trail };
}

/** The plan with the sends to topics that do not exist moved to `skipped` (`topic_missing`). */
async function withoutMissingTopics(kafka: Kafka, plan: RedrivePlan): Promise<RedrivePlan> {
  if (plan.send.length === 0) return plan;
  const admin = kafka.admin();
  let existing: Set<string>;
  await admin.connect();
  try {
    existing = new Set(await admin.listTopics());
  } finally {
    await admin.disconnect();
  }
  const send = plan.send.filter(({ topic }) => existing.has(topic));
  const missing = plan.send.filter(({ topic }) => !existing.has(topic));
  return {
    send,
    skipped: [...plan.skipped, ...missing.map(({ entry, topic }) => ({ entry, reason: 'topic_missing' as const, detail: `topic "${text(topic)}" does not exist (deleted, or never created): create it, then redrive again` }))],
  };
}

/** `vigil deadletters list`: counts by reason, with times and source topics. */
export async function listDeadLetters(context: DeadLetterContext, selection: Selection): Promise<DeadLetterSummary> {
  const entries: DeadLetterEntry[] = [];
  const ends = await scanDeadLetters(kafkaOf(context), context.config.topics.deadLetter, (entry) => {
    // Only what the summary needs is kept: the original values may be large.
    if (selects(selection, entry)) entries.push({ ...entry, record: { ...entry.record, value: null, originalKey: null } });
  }, context.scan);
  return summarise(context.config.topics.deadLetter, entries, ends);
}

/** What `vigil deadletters redrive` did. */
export interface RedriveReport {
  selected: number;
  sent: number;
  /** In a dry run, what would have been sent. */
  wouldSend: number;
  /** Messages sent per source topic. */
  sentByTopic: Record<string, number>;
  skipped: { reason: SkipReason; detail: string; position: DeadLetterPosition }[];
  dryRun: boolean;
}

/**
 * `vigil deadletters redrive`: sends the selected dead letters' original bytes under their
 * original keys back to their source topics, marked with the redrive trail, so the pipeline
 * validates them again. Acknowledged by every replica before the report says sent.
 */
export async function redriveDeadLetters(context: DeadLetterContext, selection: Selection, options: { dryRun: boolean; force: boolean; rawTopics?: readonly string[] }): Promise<RedriveReport> {
  const { config } = context;
  const kafka = kafkaOf(context);
  const { entries, redrivenSince, stoodFor, trail } = await readDeadLetters({ ...context, kafka }, selection);
  const planned = await restoreTruncated(kafka, planRedrive(entries, {
        eventTopics: [config.topics.policy, config.topics.invocation, config.topics.device],
        rawTopics: [config.intake.topic, ...(options.rawTopics ?? [])],
        internalTopics: [config.topics.detections, config.topics.deadLetter, config.alerting.notificationTopic, config.alerting.notificationDeadLetterTopic],
        force: options.force,
        redrivenSince,
        stoodFor,
        trail,
      }), context.scan);
  // The producer does not create topics: a source topic deleted since (or a --raw-topic never
  // made) would fail the run halfway, after some batches went. Skipped, and said, instead.
  const plan = await withoutMissingTopics(kafka, planned);
  const sentByTopic: Record<string, number> = {};
  if (!options.dryRun && plan.send.length > 0) {
    const producer = createProducer(kafka);
    await producer.connect();
    try {
      const byTopic = new Map<string, DeadLetterEntry[]>();
      for (const { entry, topic } of plan.send) pushInto(byTopic, topic, entry);
      for (const [topic, topicEntries] of byTopic) {
        // Cut under the broker's batch limit, as the pipeline cuts its dead letters.
        for (const batch of sendBatches(topicEntries.map(({ record, position }) => toRedriveMessage(record, position)))) {
          await producer.send({ topic, messages: batch, acks: -1 });
          sentByTopic[topic] = (sentByTopic[topic] ?? 0) + batch.length;
        }
      }
    } finally {
      await producer.disconnect();
    }
  }
  const sent = Object.values(sentByTopic).reduce((sum, count) => sum + count, 0);
  return {
    selected: entries.length,
    sent,
    wouldSend: options.dryRun ? plan.send.length : 0,
    sentByTopic,
    skipped: plan.skipped.map(({ entry, reason, detail }) => ({ reason, detail, position: entry.position })),
    dryRun: options.dryRun,
  };
}

/** A time (ms) as ISO 8601, `-` when there is none. */
export const iso = (time: number): string => (Number.isFinite(time) ? new Date(time).toISOString() : '-');

/** A header's text for a terminal (see {@link terminalText}). */
const text = terminalText;

/** The lines `list` prints. */
export function formatSummary(summary: DeadLetterSummary): string[] {
  const ends = Object.entries(summary.ends).map(([partition, end]) => `${partition}:${end}`).join(' ');
  const lines = [`${summary.topic}: ${summary.total} dead letters (read to end offsets ${ends || 'none'})`];
  if (summary.total === 0) return lines;
  lines.push(`  ${'reason'.padEnd(24)}${'count'.padStart(7)}${'distinct'.padStart(10)}  ${'oldest'.padEnd(24)}  ${'newest'.padEnd(24)}  source topics`);
  for (const reason of summary.byReason) {
    const sources = Object.entries(reason.sourceTopics).map(([topic, count]) => `${text(topic)} (${count})`).join(', ');
    const redriven = reason.redriven > 0 ? `; ${reason.redriven} failed again after a redrive` : '';
    lines.push(`  ${text(reason.reasonCode).padEnd(24)}${String(reason.count).padStart(7)}${String(reason.distinct).padStart(10)}  ${iso(reason.oldest).padEnd(24)}  ${iso(reason.newest).padEnd(24)}  ${sources}${redriven}`);
  }
  return lines;
}

/**
 * Field and query parameter names whose values are credentials (a gateway's record of a request
 * holds them). Tyk's `raw_request` / `raw_response` are the whole request and response, headers
 * included, base64-encoded.
 */
const SECRET_NAME = '(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|apikey|x-auth-token|auth[-_]?token|access[-_]?token|refresh[-_]?token|id[-_]?token|token|password|passwd|secret|client[-_]?secret|session[-_]?id|signature|raw[-_]?request|raw[-_]?response)';
/** A JSON string, escapes included. */
const JSON_TEXT = '"(?:[^"\\\\]|\\\\.)*"';
/** A JSON member `"<secret name>": "value"` (any case). */
const SECRET_MEMBER = new RegExp(`("${SECRET_NAME}"\\s*:\\s*)${JSON_TEXT}`, 'gi');
/** The same member holding a list of strings (Kong writes a repeated header so: `"cookie": ["a", "b"]`). */
// Each item after the first needs its comma: one way to match any text, so no input makes it backtrack.
const SECRET_LIST_MEMBER = new RegExp(`("${SECRET_NAME}"\\s*:\\s*)\\[\\s*(?:${JSON_TEXT}(?:\\s*,\\s*${JSON_TEXT})*\\s*)?\\]`, 'gi');
/**
 * An OpenTelemetry attribute naming a secret header, as the Collector's `otlp_json` writes one:
 * `{"key": "http.request.header.authorization", "value": {"stringValue": "..."}}`, or the
 * semantic conventions' list of values, `{"arrayValue": {"values": [{"stringValue": "..."}, ...]}}`.
 * The key's last dot-, dash- or underscore-separated part names the secret.
 */
const OTLP_KEY = `("key"\\s*:\\s*"(?:[^"\\\\]*[._-])?${SECRET_NAME}"\\s*,\\s*"value"\\s*:\\s*)`;
const OTLP_STRING = `\\{\\s*"stringValue"\\s*:\\s*${JSON_TEXT}\\s*\\}`;
const SECRET_OTLP_ATTRIBUTE = new RegExp(`${OTLP_KEY}(?:${OTLP_STRING}|\\{\\s*"arrayValue"\\s*:\\s*\\{\\s*"values"\\s*:\\s*\\[\\s*(?:${OTLP_STRING}(?:\\s*,\\s*${OTLP_STRING})*\\s*)?\\]\\s*\\}\\s*\\})`, 'gi');
/** A query parameter `?<secret name>=value` or `&…`, in a URL or a query string. */
const SECRET_PARAMETER = new RegExp(`([?&]${SECRET_NAME}=)[^&"\\s#]*`, 'gi');

/**
 * A value with the credentials it holds shown as `[redacted]`: JSON members and query parameters
 * named like one (`request.headers.authorization`, `apikey=` in a URI), and OpenTelemetry
 * attributes of such headers. A gateway's raw record (an `adapter_*` dead letter, the intake's
 * topic) holds the request's headers and query string; `show` prints values to a terminal, and
 * from there to tickets and chat. Bytes that are not UTF-8 (a protobuf OTLP record, a corrupt
 * message) can't be searched for credentials: `undefined`, and `show` withholds them.
 */
export function redactSecrets(value: Buffer): Buffer | undefined {
  let textValue: string;
  try {
    textValue = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    return undefined;
  }
  const redacted = textValue
    .replace(SECRET_MEMBER, '$1"[redacted]"')
    .replace(SECRET_LIST_MEMBER, '$1"[redacted]"')
    .replace(SECRET_OTLP_ATTRIBUTE, '$1{"stringValue":"[redacted]"}')
    .replace(SECRET_PARAMETER, '$1[redacted]');
  return redacted === textValue ? value : Buffer.from(redacted, 'utf8');
}

/** A dead letter's position as `show` prints it and the redrive trail names it: `topic/partition/offset`. */
export function letterAt(position: DeadLetterPosition): string {
  return `${position.topic}/${position.partition}/${position.offset}`;
}

/** The lines `show` prints for one dead letter; credentials in its value redacted unless `unredacted`. */
export function formatEntry(entry: DeadLetterEntry, maxBytes: number, unredacted = false): string[] {
  const { position, record } = entry;
  const lines = [
    letterAt(position),
    // Every header is text a producer chose (and a reason may quote the message): escaped, so
    // none can clear, recolour or retitle the terminal, or print a line of its own.
    `  reason         ${text(record.reasonCode)}: ${text(record.reason)}`,
    `  source         ${text(record.topic)} partition ${record.partition} offset ${text(record.offset)}`,
    `  dead-lettered  ${record.deadLetteredAt ? text(record.deadLetteredAt) : iso(entry.time)}`,
  ];
  if (record.originalKey) lines.push(`  key            ${escapeBytes(record.originalKey, 200)}`);
  if (record.redrive) lines.push(`  redriven       ${record.redrive.count} time${record.redrive.count === 1 ? '' : 's'}, last from ${text(record.redrive.from)}`);
  if (record.truncated) {
    lines.push(`  original       ${record.truncated.bytes} bytes, SHA-256 ${record.truncated.sha256}; the dead letter keeps the first ${record.value?.length ?? 0}, and redrive reads the whole message from its source`);
  }
  const shown = record.value === null || unredacted ? record.value : redactSecrets(record.value);
  if (shown === undefined) {
    lines.push(`  value          (${record.value?.length ?? 0} bytes) withheld: not UTF-8 text, so credentials in it can't be found and redacted (--unredacted prints it)`);
  } else {
    lines.push(`  value          ${record.value === null ? '' : `(${record.value.length} bytes) `}${escapeBytes(shown, maxBytes)}`);
  }
  return lines;
}

/** The lines `redrive` prints. */
export function formatRedrive(report: RedriveReport): string[] {
  const skipped = report.skipped.length;
  const lines = [
    report.dryRun
      ? `redrive (dry run): ${report.selected} selected, 0 sent (${report.wouldSend} would be sent), ${skipped} skipped`
      : `redrive: ${report.selected} selected, ${report.sent} sent, ${skipped} skipped`,
  ];
  for (const [topic, count] of Object.entries(report.sentByTopic)) lines.push(`  sent ${count} to ${text(topic)}`);
  const byReason = new Map<SkipReason, typeof report.skipped>();
  for (const entry of report.skipped) pushInto(byReason, entry.reason, entry);
  for (const [reason, entries] of byReason) {
    const examples = entries.slice(0, 3).map(({ position, detail }) => `${position.topic}/${position.partition}/${position.offset}: ${text(detail)}`);
    lines.push(`  skipped ${entries.length} ${reason} (${examples.join('; ')}${entries.length > 3 ? '; ...' : ''})`);
  }
  return lines;
}

/**
 * `vigil deadletters ...`: parses, runs and prints; returns the exit code (2 for a bad command
 * line, with the problem and the usage on stderr).
 */
export async function runDeadLetters(args: readonly string[], contextOf: DeadLetterContext | (() => DeadLetterContext)): Promise<number> {
  // `vigil deadletters --help`, and `vigil deadletters list --help` (any subcommand's) as well.
  if (args[0] === 'help' || args.some((arg) => arg === '--help' || arg === '-h')) {
    console.log(DEAD_LETTER_USAGE);
    return 0;
  }
  let parsed: DeadLetterCommand;
  try {
    parsed = parseDeadLetterArgs(args);
  } catch (error) {
    if (!(error instanceof DeadLetterUsageError)) throw error;
    console.error(`vigil deadletters: ${error.message}\n\n${DEAD_LETTER_USAGE}`);
    return 2;
  }
  // The configuration is loaded only for a command line that parsed: a typo is reported as such.
  const context = typeof contextOf === 'function' ? contextOf() : contextOf;
  const out = context.out ?? ((line: string) => console.log(line));
  const kafka = kafkaOf(context);
  // Kafka away or refusing: one line naming it and the setting to check, not kafkajs's retries.
  await requireConnections(context.config, { kafka });
  switch (parsed.command) {
    case 'list':
      for (const line of formatSummary(await listDeadLetters({ ...context, kafka }, parsed.selection))) out(line);
      return 0;
    case 'show': {
      const { entries, matched } = await readDeadLetters({ ...context, kafka }, parsed.selection, parsed.limit);
      for (const entry of entries) for (const line of formatEntry(entry, parsed.maxBytes, parsed.unredacted)) out(line);
      out(`${entries.length} of ${matched} selected dead letters shown${matched > entries.length ? ` (--limit ${parsed.limit})` : ''}`);
      return 0;
    }
    case 'redrive': {
      const report = await redriveDeadLetters({ ...context, kafka }, parsed.selection, parsed);
      for (const line of formatRedrive(report)) out(line);
      // A dead letter left for a reason the operator must act on (no original, a deleted topic,
      // the redrive limit) is a redrive that did not do its job: exit 1 for a script to see. One
      // redriven already (this run or since) is what a second run is meant to do: exit 0.
      return !report.dryRun && report.skipped.some(({ reason }) => ACT_ON_SKIPS.has(reason)) ? 1 : 0;
    }
  }
}
