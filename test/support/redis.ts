import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isBatchScript, roundTrip, type ScriptItem, type ScriptName } from '../../detectors';
import type { RedisClient } from '../../platform';

/** Where the shipped Lua files are. */
const LUA_DIR = join(__dirname, '..', '..', 'detectors', 'state', 'lua');

/** Every Lua file shipped, for the tests that hold each one to its contract. */
export function luaFiles(): string[] {
  return readdirSync(LUA_DIR).filter((file) => file.endsWith('.lua'));
}

/**
 * Calls a batch script with several items, through the production round trip; one reply per
 * item (an item's own failure is an Error in its place). A call Redis refuses whole is thrown.
 */
export async function callBatch(redis: RedisClient, script: ScriptName, items: readonly ScriptItem[]): Promise<unknown[]> {
  const [reply] = await roundTrip(redis, [{ script, items }], { operation: 'test' });
  if (reply === undefined) throw new Error(`${script} sent no reply`);
  if (!reply.ok) throw reply.error;
  if (!Array.isArray(reply.value)) throw new TypeError(`${script} replied ${typeof reply.value}, expected one reply per item`);
  return reply.value as unknown[];
}

/**
 * Calls a registered script once. A batch script is called with one item, and its one reply is
 * returned (thrown when it is an error).
 */
export async function callScript(redis: RedisClient, script: ScriptName, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  if (isBatchScript(script)) {
    const [reply] = await callBatch(redis, script, [{ keys, args }]);
    if (reply instanceof Error) throw reply;
    return reply;
  }
  const [reply] = await roundTrip(redis, [{ script, keys, args }], { operation: 'test' });
  if (reply === undefined) throw new Error(`${script} sent no reply`);
  if (!reply.ok) throw reply.error;
  return reply.value;
}
