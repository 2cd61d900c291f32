import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainableCommander, Redis } from 'ioredis';
import type { ScriptName } from './evaluation';

const LUA_DIR = join(__dirname, 'lua');

/**
 * File names are `verbNoun-<number of keys>.lua`. Commands are registered as `vigil_<verbNoun>_v1`:
 * a change of meaning gets a new verbNoun (or a new version suffix here), so two versions of
 * Vigil sharing a Redis never run each other's logic.
 */
const SCRIPTS: Record<ScriptName | 'claimFiring', string> = {
  windowAdd: 'windowAdd-2.lua',
  distinctAdd: 'distinctAdd-3.lua',
  sequenceAdd: 'sequenceAdd-2.lua',
  firstSeen: 'firstSeen-1.lua',
  lastLocation: 'lastLocation-1.lua',
  claimFiring: 'claimFiring-1.lua',
  surgeTick: 'surgeTick-2.lua',
  alertUpsert: 'alertUpsert-2.lua',
  alertResolve: 'alertResolve-2.lua',
  noteDevice: 'noteDevice-3.lua',
  readContext: 'readContext-3.lua',
  noteRequest: 'noteRequest-1.lua',
  readRequest: 'readRequest-1.lua',
};

/** The command name a script is registered under. */
export function commandName(script: ScriptName | 'claimFiring'): string {
  return `vigil_${script}_v1`;
}

/** Every Lua file shipped, for the tests that hold each one to its contract. */
export function luaFiles(): string[] {
  return readdirSync(LUA_DIR).filter((file) => file.endsWith('.lua'));
}

/** Registers every script on a client (idempotent); ioredis then uses EVALSHA. */
export function defineScripts(redis: Redis): void {
  for (const [script, file] of Object.entries(SCRIPTS) as [ScriptName | 'claimFiring', string][]) {
    const name = commandName(script);
    if (typeof Reflect.get(redis, name) === 'function') continue;
    const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
    redis.defineCommand(name, { numberOfKeys, lua: readFileSync(join(LUA_DIR, file), 'utf8') });
  }
}

type ScriptCall = (...args: (string | number)[]) => unknown;

/** Queues a registered script on a pipeline. */
export function queueScript(
  pipeline: ChainableCommander,
  script: ScriptName | 'claimFiring',
  keys: readonly string[],
  args: readonly (string | number)[],
): void {
  const command = Reflect.get(pipeline, commandName(script)) as ScriptCall | undefined;
  if (typeof command !== 'function') throw new TypeError(`script ${script} is not defined on this Redis client`);
  command.call(pipeline, ...keys, ...args);
}

/** Calls a registered script directly (tests, one-off use). */
export async function callScript(
  redis: Redis,
  script: ScriptName | 'claimFiring',
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const command = Reflect.get(redis, commandName(script)) as ((...values: (string | number)[]) => Promise<unknown>) | undefined;
  if (typeof command !== 'function') throw new TypeError(`script ${script} is not defined on this Redis client`);
  return command.call(redis, ...keys, ...args);
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
