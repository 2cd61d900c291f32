import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Config } from './config';
import type { Logger } from './logger';

/**
 * A Redis client for rule state, correlation and alert state: it fails fast when Redis is away
 * (one retry per request), so a partition pauses instead of hanging.
 */
export function createRedis(config: Config, logger?: Logger): Redis {
  const { url, username, password, caFile } = config.redis;
  const redis = new Redis(url, {
    // Credentials given apart from the URL keep the URL free of secrets (it may be logged).
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(url.startsWith('rediss://') ? { tls: caFile === undefined ? {} : { ca: readFileSync(caFile, 'utf8') } } : {}),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    lazyConnect: false,
  });
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
