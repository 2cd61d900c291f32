import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { Config } from './config';
import { urlWithoutCredentials } from './errors';
import type { Logger } from './logger';

/**
 * The Redis Vigil keeps rule, correlation and alert state in: one Redis (`REDIS_URL`), or a Redis
 * Cluster (`REDIS_CLUSTER_NODES`). Code that sends a command on several keys, or over the whole
 * keyspace, goes through the helpers below, which know the difference.
 */
export type RedisClient = Redis | Cluster;

/** Whether a client is a Redis Cluster client (ioredis's own flag: a plain client says false). */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster === true;
}

/** A cluster's address lookup that leaves a hostname as it is (TLS verifies the certificate against it). */
export function keepHostname(address: string, callback: (error: Error | null, address: string) => void): void {
  callback(null, address);
}

/**
 * A Redis client for rule state, correlation and alert state: it fails fast when Redis is away
 * (one retry per request), so a partition pauses instead of hanging. With `REDIS_CLUSTER_NODES`
 * set it is an ioredis `Cluster` with the same credentials and TLS, asking the seeds for the
 * cluster's layout and following MOVED/ASK redirections.
 */
export function createRedis(config: Config, logger?: Logger): RedisClient {
  const { url, username, password, caFile, cluster } = config.redis;
  const tls = cluster === undefined ? url.startsWith('rediss://') : cluster.tls;
  const options = {
    // Credentials given apart from the URL keep the URL free of secrets (it may be logged).
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls ? { tls: caFile === undefined ? {} : { ca: readFileSync(caFile, 'utf8') } } : {}),
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    // A Redis that accepts the connection and then stops answering fails the command, which
    // pauses the partition as an outage does, instead of holding it until TCP gives up.
    commandTimeout: config.redis.commandTimeoutMs,
    keepAlive: 10_000,
  };
  const redis: RedisClient =
    cluster === undefined
      ? new Redis(url, { ...options, enableOfflineQueue: true, lazyConnect: false })
      : new Cluster(
          cluster.nodes.map(({ host, port }) => ({ host, port })),
          // A node's TLS and credentials go in redisOptions; the offline queue holds commands until
          // the slots are known, as the single client holds them until it is connected.
          {
            redisOptions: options,
            enableOfflineQueue: true,
            lazyConnect: false,
            slotsRefreshTimeout: 5000,
            // Over TLS the certificate is checked against the name dialled: ioredis resolved each
            // seed's hostname to an address first, and a certificate naming hosts only failed.
            ...(tls ? { dnsLookup: keepHostname } : {}),
          },
        );
  // ioredis asks the seeds for the layout one after another, each for up to the connect timeout.
  if (cluster !== undefined && isCluster(redis)) boundOfflineQueue(redis, options.connectTimeout * cluster.nodes.length + options.commandTimeout);
  // Connection errors are the callers' to handle (they pause, or a start check names them); this
  // keeps ioredis from printing each reconnect failure as an "unhandled error event".
  let lastLogged = 0;
  redis.on('error', (error: unknown) => {
    const now = Date.now();
    if (now - lastLogged < 30_000) return;
    lastLogged = now;
    logger?.warn({ err: error }, 'redis connection error (logged at most every 30 s)');
  });
  return redis;
}

/**
 * Bounds how long a Redis Cluster client holds commands while it has no node to send them to.
 * ioredis's cluster keeps them in its offline queue until the cluster is ready, with no timeout
 * (the command timeout starts only once a command reaches a node): with every node away, a start
 * check waited forever, and so would every chunk's state. `waitMs` is the connect timeout per seed
 * (they are asked in turn) plus the command timeout. The queue stays on while the client
 * connects or reconnects; once it has not been ready for `waitMs`, what it holds fails ("not
 * ready"), as a single Redis's commands do, and so does every command until it is ready again.
 */
export function boundOfflineQueue(cluster: Cluster, waitMs: number): void {
  // flushQueue is ioredis's own (private in its types): it rejects every queued command.
  const internals = cluster as unknown as { flushQueue?: (error: Error) => void };
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (timer !== undefined || cluster.status === 'ready' || cluster.status === 'end') return;
    timer = setTimeout(() => {
      timer = undefined;
      if (cluster.status === 'ready' || cluster.status === 'end') return;
      cluster.options.enableOfflineQueue = false;
      internals.flushQueue?.call(cluster, new Error(`Redis Cluster not ready for ${waitMs} ms (${cluster.status})`));
    }, waitMs);
    timer.unref();
  };
  cluster.on('ready', () => {
    clearTimeout(timer);
    timer = undefined;
    cluster.options.enableOfflineQueue = true;
  });
  cluster.on('end', () => {
    clearTimeout(timer);
    timer = undefined;
  });
  for (const status of ['connecting', 'reconnecting', 'close']) cluster.on(status, arm);
  arm();
}

/** Where Vigil's Redis is, for messages: the URL (without credentials) or the cluster's seeds. */
export function redisWhere(config: Config): string {
  const { url, cluster } = config.redis;
  if (cluster !== undefined) return `cluster ${cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
  return urlWithoutCredentials(url);
}

/** Hash slots of a Redis Cluster. */
export const HASH_SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(text: string): number {
  let crc = 0;
  const add = (byte: number): void => {
    crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0);
  };
  for (let index = 0; index < text.length; index++) {
    let code = text.charCodeAt(index);
    // The key's UTF-8 bytes, encoded here as ioredis's own slot function (cluster-key-slot) does,
    // lone surrogates included, so that ioredis accepts the pipelines grouped by these slots.
    if (code < 0x80) add(code);
    else if (code < 0x800) {
      add((code >> 6) | 0xc0);
      add((code & 0x3f) | 0x80);
    } else if ((code & 0xfc00) === 0xd800 && index + 1 < text.length && (text.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
      code = 0x10000 + ((code & 0x3ff) << 10) + (text.charCodeAt(++index) & 0x3ff);
      add((code >> 18) | 0xf0);
      add(((code >> 12) & 0x3f) | 0x80);
      add(((code >> 6) & 0x3f) | 0x80);
      add((code & 0x3f) | 0x80);
    } else {
      add((code >> 12) | 0xe0);
      add(((code >> 6) & 0x3f) | 0x80);
      add((code & 0x3f) | 0x80);
    }
  }
  return crc;
}

/**
 * The hash slot of a key, as Redis Cluster computes it (CRC16/XMODEM mod 16384): of the hash tag
 * when the key has one (the text between the first `{` and the first `}` after it, if not empty),
 * else of the whole key. Vigil's keys carry tags (detectors/state/keys.ts), so the keys one script
 * call takes are in one slot. The same function as ioredis's (a lone UTF-16 surrogate, which
 * reaches Redis as U+FFFD, hashes here as ioredis hashes it: ioredis routes by it).
 */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % HASH_SLOTS;
  }
  return crc16(key) % HASH_SLOTS;
}

/** Commands on the keys of one hash slot, queued together on one pipeline. */
export interface SlotCommands {
  slot: number;
  /** Queues the commands; how many it queued is read off the pipeline. */
  queue(pipeline: ChainableCommander): void;
}

/** The node (its address, master first) serving a slot, or the slot itself while the layout is unknown. */
function nodeOf(cluster: Cluster, slot: number): string {
  return cluster.slots[slot]?.join(',') ?? `slot ${slot}`;
}

/**
 * Sends groups of commands, each group on the keys of one hash slot. One Redis: every group in
 * one pipeline, one round trip. A cluster: the groups of each node in one pipeline, in the order
 * given (so commands on one key keep their order), every node's pipeline at once; the trip takes
 * as long as the slowest node. While the cluster's layout is not known yet (connecting), each slot
 * gets a pipeline of its own, which ioredis sends once the layout is in.
 * @returns each group's `[error, reply]` pairs, in the order given
 * @throws the first pipeline's failure (a connection failure, or ioredis refusing a pipeline
 *   whose slots moved between grouping and sending); `Error('pipeline aborted')` for an aborted one
 */
export async function execBySlot(client: RedisClient, groups: readonly SlotCommands[]): Promise<[Error | null, unknown][][]> {
  if (groups.length === 0) return [];
  const byNode = new Map<string, number[]>();
  if (isCluster(client)) {
    groups.forEach((group, index) => {
      const node = nodeOf(client, group.slot);
      const members = byNode.get(node);
      if (members) members.push(index);
      else byNode.set(node, [index]);
    });
  } else {
    byNode.set('', groups.map((_, index) => index));
  }
  const result = new Array<[Error | null, unknown][]>(groups.length);
  await Promise.all(
    [...byNode.values()].map(async (members) => {
      const pipeline = client.pipeline();
      const counts = members.map((index) => {
        const before = pipeline.length;
        groups[index]?.queue(pipeline);
        return pipeline.length - before;
      });
      const replies = await pipeline.exec();
      if (replies === null) throw new Error('pipeline aborted');
      let offset = 0;
      members.forEach((index, position) => {
        const count = counts[position] ?? 0;
        result[index] = replies.slice(offset, offset + count);
        offset += count;
      });
    }),
  );
  return result;
}

/** Groups positions by the hash slot of the key at each: slot -> positions, in order. */
export function positionsBySlot(keys: readonly string[]): Map<number, number[]> {
  const bySlot = new Map<number, number[]>();
  keys.forEach((key, position) => {
    const slot = hashSlot(key);
    const positions = bySlot.get(slot);
    if (positions) positions.push(position);
    else bySlot.set(slot, [position]);
  });
  return bySlot;
}

/**
 * MGET of keys in any slots: one MGET on one Redis; on a cluster, one MGET per slot, the slots of
 * each node in one pipeline, every node at once.
 * @returns each key's value (or null), in the order given
 */
export async function mgetAnySlot(client: RedisClient, keys: readonly string[]): Promise<(string | null)[]> {
  if (keys.length === 0) return [];
  if (!isCluster(client)) return client.mget(...keys);
  const slots = [...positionsBySlot(keys)];
  const replies = await execBySlot(
    client,
    slots.map(([slot, positions]) => ({ slot, queue: (pipeline) => void pipeline.mget(...positions.map((position) => keys[position] ?? '')) })),
  );
  const values = new Array<string | null>(keys.length).fill(null);
  slots.forEach(([, positions], group) => {
    const [error, value] = replies[group]?.[0] ?? [new Error('no reply to MGET'), null];
    if (error) throw error;
    positions.forEach((position, index) => (values[position] = (value as (string | null)[])[index] ?? null));
  });
  return values;
}

/**
 * Deletes keys in any slots, 1,000 at a time: DEL on one Redis; on a cluster, one DEL per slot
 * (the slots of each node in one pipeline).
 * @returns how many keys existed
 */
export async function deleteAnySlot(client: RedisClient, keys: readonly string[]): Promise<number> {
  let deleted = 0;
  for (let start = 0; start < keys.length; start += 1000) {
    const chunk = keys.slice(start, start + 1000);
    if (!isCluster(client)) {
      deleted += await client.del(...chunk);
      continue;
    }
    const replies = await execBySlot(
      client,
      [...positionsBySlot(chunk)].map(([slot, positions]) => ({ slot, queue: (pipeline) => void pipeline.del(...positions.map((position) => chunk[position] ?? '')) })),
    );
    for (const [[error, count] = [new Error('no reply to DEL'), 0]] of replies) {
      if (error) throw error;
      deleted += Number(count);
    }
  }
  return deleted;
}

async function scanNode(node: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/**
 * Every key matching a pattern: SCAN, never KEYS, so Redis is not blocked. On a cluster, every
 * master is scanned (a SCAN reaches one node only), all at once.
 */
export async function scanKeys(client: RedisClient, match: string): Promise<string[]> {
  if (!isCluster(client)) return scanNode(client, match);
  // The masters are known once the slots are: a first command waits for them.
  if (client.nodes('master').length === 0) await client.ping();
  const perNode = await Promise.all(client.nodes('master').map((node) => scanNode(node, match)));
  return perNode.flat();
}
