import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainableCommander } from 'ioredis';
import { deleteAnySlot, scanKeys, type RedisClient } from '../../platform';

const LUA_DIR = join(__dirname, 'lua');

/** How a script is called: a batch script takes `args` arguments per item (see {@link queueBatch}). */
interface ScriptSpec {
  file: string;
  batch?: { args: number };
}

/**
 * Every Lua script, by name. File names are `verbNoun-<number of keys>.lua`; each file opens
 * with `-- version: N`, and its command is registered as `vigil_<verbNoun>_v<N>`: a change of
 * meaning or of calling convention gets a new version, so two versions of Vigil sharing a Redis
 * never run each other's logic. A unit test pins each version's content, so an edit without a
 * bump fails.
 *
 * Batch scripts (the rule state of the engine) take any number of items in one call, each with
 * the file's number of keys and `args` arguments, and reply with one reply per item; they are
 * the file prefixed with lib/batch.lua. The others take one call's keys and arguments.
 */
const SCRIPTS = {
  windowAdd: { file: 'windowAdd-2.lua', batch: { args: 8 } },
  distinctAdd: { file: 'distinctAdd-3.lua', batch: { args: 10 } },
  distinctShare: { file: 'distinctShare-4.lua', batch: { args: 11 } },
  sequenceAdd: { file: 'sequenceAdd-2.lua', batch: { args: 9 } },
  firstSeen: { file: 'firstSeen-1.lua', batch: { args: 5 } },
  locationAdd: { file: 'locationAdd-2.lua', batch: { args: 6 } },
  surgeTick: { file: 'surgeTick-2.lua', batch: { args: 14 } },
  claimFiring: { file: 'claimFiring-1.lua' },
  alertHold: { file: 'alertHold-2.lua' },
  alertRelease: { file: 'alertRelease-2.lua' },
  alertFold: { file: 'alertFold-12.lua' },
  alertSettle: { file: 'alertSettle-5.lua' },
  alertSilence: { file: 'alertSilence-2.lua' },
  alertHeldClaim: { file: 'alertHeldClaim-2.lua' },
  alertHeldClear: { file: 'alertHeldClear-3.lua' },
  alertLinksPrune: { file: 'alertLinksPrune-2.lua' },
  noteDevice: { file: 'noteDevice-3.lua', batch: { args: 6 } },
  readContext: { file: 'readContext-3.lua', batch: { args: 1 } },
  noteRequest: { file: 'noteRequest-2.lua', batch: { args: 4 } },
  readRequest: { file: 'readRequest-2.lua', batch: { args: 0 } },
  groupSwap: { file: 'groupSwap-2.lua' },
  riskAdd: { file: 'riskAdd-2.lua', batch: { args: 8 } },
} as const satisfies Record<string, ScriptSpec>;

/** The Lua scripts, by their registered names. */
export type ScriptName = keyof typeof SCRIPTS;

/** Every script name, in the table's order. */
export const SCRIPT_NAMES = Object.keys(SCRIPTS) as ScriptName[];

const spec = (script: ScriptName): ScriptSpec => SCRIPTS[script];

/** A script as registered: its file, the version its header declares, and the Lua sent to Redis. */
export interface ScriptSource {
  script: ScriptName;
  file: string;
  version: number;
  /** The registered source: the file, after lib/batch.lua for a batch script. */
  lua: string;
}

const VERSION_LINE = /^-- version: (\d+)\b/;
const SOURCES = new Map<ScriptName, ScriptSource>();
let prelude: string | undefined;

/**
 * A script's registered source and version, read from its file once.
 * @throws TypeError when the file does not open with a `-- version: N` line
 */
export function scriptSource(script: ScriptName): ScriptSource {
  let source = SOURCES.get(script);
  if (source === undefined) {
    const { file, batch } = spec(script);
    const body = readFileSync(join(LUA_DIR, file), 'utf8');
    const version = Number(VERSION_LINE.exec(body)?.[1]);
    if (!Number.isInteger(version) || version < 1) throw new TypeError(`${file} must open with a "-- version: N" line`);
    prelude ??= readFileSync(join(LUA_DIR, 'lib', 'batch.lua'), 'utf8');
    // Batch scripts get their item loop from the prelude (and with it a variable number of keys).
    source = { script, file, version, lua: batch ? `${prelude}\n${body}` : body };
    SOURCES.set(script, source);
  }
  return source;
}

/** Most items in one call of a batch script: a call blocks Redis while it runs, so it stays short. */
export const MAX_BATCH_ITEMS = 256;

/** The command name a script is registered under. */
export function commandName(script: ScriptName): string {
  return `vigil_${script}_v${scriptSource(script).version}`;
}

/** Keys per call (per item, for a batch script): the number in the file name, read once. */
const KEY_COUNTS = new Map(Object.entries(SCRIPTS).map(([script, { file }]) => [script, Number(/-(\d+)\.lua$/.exec(file)?.[1])]));

function keyCount(script: ScriptName): number {
  return KEY_COUNTS.get(script) ?? Number.NaN;
}

/** Whether a script takes a batch of items per call (see {@link queueBatch}). */
export function isBatchScript(script: ScriptName): boolean {
  return spec(script).batch !== undefined;
}

/** Registers every script on a client (idempotent); ioredis then uses EVALSHA. */
export function defineScripts(redis: RedisClient): void {
  for (const script of SCRIPT_NAMES) {
    const name = commandName(script);
    if (typeof Reflect.get(redis, name) === 'function') continue;
    const { lua } = scriptSource(script);
    redis.defineCommand(name, isBatchScript(script) ? { lua } : { numberOfKeys: keyCount(script), lua });
  }
}

type ScriptCall = (...args: (string | number)[]) => unknown;

/** One item of a batch script call: the keys and arguments of one event for one rule. */
export interface ScriptItem {
  keys: readonly string[];
  args: readonly (string | number)[];
}

/** The flat arguments of a call: numkeys, every item's keys, then every item's arguments. */
function batchArguments(script: ScriptName, items: readonly ScriptItem[]): (string | number)[] {
  const batch = spec(script).batch;
  if (!batch) throw new TypeError(`script ${script} is not a batch script`);
  const keys = keyCount(script);
  const flat: (string | number)[] = [items.length * keys];
  for (const item of items) {
    if (item.keys.length !== keys || item.args.length !== batch.args) {
      throw new TypeError(`script ${script} takes ${keys} keys and ${batch.args} arguments per item, got ${item.keys.length} and ${item.args.length}`);
    }
    flat.push(...item.keys);
  }
  for (const item of items) flat.push(...item.args);
  return flat;
}

function commandOf(target: object, script: ScriptName): ScriptCall {
  const command = Reflect.get(target, commandName(script)) as ScriptCall | undefined;
  if (typeof command !== 'function') throw new TypeError(`script ${script} is not defined on this Redis client`);
  return command;
}

/** Queues a registered (single-call) script on a pipeline. */
export function queueScript(pipeline: ChainableCommander, script: ScriptName, keys: readonly string[], args: readonly (string | number)[]): void {
  if (isBatchScript(script)) {
    queueBatch(pipeline, script, [{ keys, args }]);
    return;
  }
  commandOf(pipeline, script).call(pipeline, ...keys, ...args);
}

/**
 * Queues one call of a batch script for up to {@link MAX_BATCH_ITEMS} items on a pipeline. Its
 * reply is an array with one reply per item, in order; an item that failed has a ReplyError in
 * its place.
 */
export function queueBatch(pipeline: ChainableCommander, script: ScriptName, items: readonly ScriptItem[]): void {
  if (items.length === 0 || items.length > MAX_BATCH_ITEMS) throw new RangeError(`a ${script} call takes 1 to ${MAX_BATCH_ITEMS} items, got ${items.length}`);
  commandOf(pipeline, script).call(pipeline, ...batchArguments(script, items));
}

/**
 * Every key under a prefix (`<prefix>:*`), sorted: SCAN, never KEYS, so Redis is not blocked; on
 * a Redis Cluster, every master is scanned.
 */
export async function keysUnder(redis: RedisClient, prefix: string): Promise<string[]> {
  return (await scanKeys(redis, `${prefix}:*`)).sort();
}

/** Deletes every key under a prefix: throwaway state of replays, fixtures and tests (one DEL per slot on a cluster). */
export async function deleteKeysUnder(redis: RedisClient, prefix: string): Promise<number> {
  const keys = await keysUnder(redis, prefix);
  await deleteAnySlot(redis, keys);
  return keys.length;
}
