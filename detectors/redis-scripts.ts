import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainableCommander, Redis } from 'ioredis';
import type { ScriptName } from './evaluation';

const LUA_DIR = join(__dirname, 'lua');

type AnyScript = ScriptName | 'claimFiring';

/**
 * File names are `verbNoun-<number of keys>.lua`. Commands are registered as `vigil_<verbNoun>_v<n>`:
 * a change of meaning or of calling convention gets a new verbNoun or version, so two versions
 * of Vigil sharing a Redis never run each other's logic.
 *
 * Batch scripts (the rule state of the engine) take any number of items in one call, each with
 * the file's number of keys and `args` arguments, and reply with one reply per item; they are
 * the file prefixed with lib/batch.lua. The others take one call's keys and arguments.
 */
const SCRIPTS: Record<AnyScript, { file: string; version: number; batch?: { args: number } }> = {
  windowAdd: { file: 'windowAdd-2.lua', version: 2, batch: { args: 8 } },
  distinctAdd: { file: 'distinctAdd-3.lua', version: 2, batch: { args: 9 } },
  sequenceAdd: { file: 'sequenceAdd-2.lua', version: 2, batch: { args: 9 } },
  firstSeen: { file: 'firstSeen-1.lua', version: 2, batch: { args: 5 } },
  lastLocation: { file: 'lastLocation-1.lua', version: 2, batch: { args: 5 } },
  surgeTick: { file: 'surgeTick-2.lua', version: 2, batch: { args: 8 } },
  claimFiring: { file: 'claimFiring-1.lua', version: 1 },
  alertUpsert: { file: 'alertUpsert-2.lua', version: 1 },
  alertResolve: { file: 'alertResolve-2.lua', version: 1 },
  noteDevice: { file: 'noteDevice-3.lua', version: 1 },
  readContext: { file: 'readContext-3.lua', version: 1 },
  noteRequest: { file: 'noteRequest-1.lua', version: 1 },
  readRequest: { file: 'readRequest-1.lua', version: 1 },
};

/** Most items in one call of a batch script: a call blocks Redis while it runs, so it stays short. */
export const MAX_BATCH_ITEMS = 256;

/** The command name a script is registered under. */
export function commandName(script: AnyScript): string {
  return `vigil_${script}_v${SCRIPTS[script].version}`;
}

/** Keys per call (per item, for a batch script): the number in the file name, read once. */
const KEY_COUNTS = new Map(Object.entries(SCRIPTS).map(([script, { file }]) => [script, Number(/-(\d+)\.lua$/.exec(file)?.[1])]));

function keyCount(script: AnyScript): number {
  return KEY_COUNTS.get(script) ?? Number.NaN;
}

/** Whether a script takes a batch of items per call (see {@link queueBatch}). */
export function isBatchScript(script: AnyScript): boolean {
  return SCRIPTS[script].batch !== undefined;
}

/** Every Lua file shipped, for the tests that hold each one to its contract. */
export function luaFiles(): string[] {
  return readdirSync(LUA_DIR).filter((file) => file.endsWith('.lua'));
}

/** Registers every script on a client (idempotent); ioredis then uses EVALSHA. */
export function defineScripts(redis: Redis): void {
  let prelude: string | undefined;
  for (const [script, { file, batch }] of Object.entries(SCRIPTS) as [AnyScript, (typeof SCRIPTS)[AnyScript]][]) {
    const name = commandName(script);
    if (typeof Reflect.get(redis, name) === 'function') continue;
    const body = readFileSync(join(LUA_DIR, file), 'utf8');
    prelude ??= readFileSync(join(LUA_DIR, 'lib', 'batch.lua'), 'utf8');
    // Batch scripts get their item loop from the prelude (and with it a variable number of keys).
    redis.defineCommand(name, batch ? { lua: `${prelude}\n${body}` } : { numberOfKeys: keyCount(script), lua: body });
  }
}

type ScriptCall = (...args: (string | number)[]) => unknown;

/** One item of a batch script call: the keys and arguments of one event for one rule. */
export interface ScriptItem {
  keys: readonly string[];
  args: readonly (string | number)[];
}

/** The flat arguments of a call: numkeys, every item's keys, then every item's arguments. */
function batchArguments(script: AnyScript, items: readonly ScriptItem[]): (string | number)[] {
  const batch = SCRIPTS[script].batch;
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

function commandOf(target: object, script: AnyScript): ScriptCall {
  const command = Reflect.get(target, commandName(script)) as ScriptCall | undefined;
  if (typeof command !== 'function') throw new TypeError(`script ${script} is not defined on this Redis client`);
  return command;
}

/** Queues a registered (single-call) script on a pipeline. */
export function queueScript(pipeline: ChainableCommander, script: AnyScript, keys: readonly string[], args: readonly (string | number)[]): void {
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
export function queueBatch(pipeline: ChainableCommander, script: AnyScript, items: readonly ScriptItem[]): void {
  if (items.length === 0 || items.length > MAX_BATCH_ITEMS) throw new RangeError(`a ${script} call takes 1 to ${MAX_BATCH_ITEMS} items, got ${items.length}`);
  commandOf(pipeline, script).call(pipeline, ...batchArguments(script, items));
}

/** Calls a batch script directly with several items (tests, one-off use); one reply per item. */
export async function callBatch(redis: Redis, script: AnyScript, items: readonly ScriptItem[]): Promise<unknown[]> {
  const reply = await (commandOf(redis, script).call(redis, ...batchArguments(script, items)) as Promise<unknown>);
  if (!Array.isArray(reply)) throw new TypeError(`${script} replied ${typeof reply}, expected one reply per item`);
  return reply as unknown[];
}

/**
 * Calls a registered script directly (tests, one-off use). A batch script is called with one
 * item, and its one reply is returned (thrown when it is an error).
 */
export async function callScript(redis: Redis, script: AnyScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  if (isBatchScript(script)) {
    const [reply] = await callBatch(redis, script, [{ keys, args }]);
    if (reply instanceof Error) throw reply;
    return reply;
  }
  return (commandOf(redis, script).call(redis, ...keys, ...args));
}

/** Every key under a prefix (`<prefix>:*`), sorted: SCAN, never KEYS, so Redis is not blocked. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/** Deletes every key under a prefix: throwaway state of replays, fixtures and tests. */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysUnder(redis, prefix);
  for (let start = 0; start < keys.length; start += 1000) await redis.del(...keys.slice(start, start + 1000));
  return keys.length;
}
