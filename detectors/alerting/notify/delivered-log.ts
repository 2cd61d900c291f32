import type { RedisClient } from '../../../platform';
import { StoreUnavailableError, errorMessage, mgetAnySlot } from '../../../platform';
import { deliveredKey } from '../../state';
import type { DeliveredLog } from './notifier';

/** How long a delivered id is remembered: the outbox topic's default retention (7 days). */
export const DELIVERED_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * The delivered ids of the notification outbox, in Redis: one key per id with a TTL, read with
 * one MGET per chunk (on a Redis Cluster, one per hash slot: each id is a key of its own). A
 * record found twice in the outbox (a change written again after a crash, or a chunk redone
 * after a crash) is then sent once.
 */
export function createDeliveredLog(redis: RedisClient, prefix: string, ttlMs = DELIVERED_TTL_MS): DeliveredLog {
  return {
    async delivered(deliveryIds) {
      if (deliveryIds.length === 0) return new Set();
      try {
        const found = await mgetAnySlot(redis, deliveryIds.map((id) => deliveredKey(prefix, id)));
        return new Set(deliveryIds.filter((_, position) => found[position] !== null));
      } catch (error) {
        throw new StoreUnavailableError('redis', `delivered notifications: ${errorMessage(error)}`, error);
      }
    },
    async remember(deliveryId) {
      try {
        await redis.set(deliveredKey(prefix, deliveryId), '1', 'PX', ttlMs);
      } catch (error) {
        throw new StoreUnavailableError('redis', `delivered notifications: ${errorMessage(error)}`, error);
      }
    },
  };
}
