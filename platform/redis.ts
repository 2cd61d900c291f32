import { Redis } from 'ioredis';
import type { Config } from './config';

/**
 * A Redis client for rule state, correlation and alert state: it fails fast when Redis is away
 * (one retry per request), so a partition pauses instead of hanging.
 */
export function createRedis(config: Config): Redis {
  return new Redis(config.redis.url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    lazyConnect: false,
  });
}
