/**
 * Alert state in Redis: the `alertHold`, `alertRelease`, `alertFold` and `alertSettle` calls and
 * the decoding of their replies. Keys come from the one key builder and every script call goes through the state
 * layer's one round-trip helper, as the engine's and the correlator's do.
 */
import type { RedisClient } from '../../platform';
import { z } from 'zod';
import { StoreUnavailableError, errorMessage, type Instrumentation } from '../../platform';
import { ALERT_CHANGES, type Alert, type AlertChange } from '../../schemas';
import { alertKeys, defineScripts, roundTrip } from '../state';
import { EVIDENCE_ENTITIES_LISTED, EVIDENCE_IDS_KEPT, MAX_INCIDENT_ENTITIES, USER_GROUP_PREFIX, evidenceOf, severityOfRank } from './grouping-policy';

const unsentRecord = z.object({ kind: z.enum(ALERT_CHANGES), fields: z.string(), reason: z.string(), at: z.number() });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/**
 * An alert from the hash fields the Lua scripts return (HGETALL as a flat JSON array). Its
 * evidence comes from `evidence` (the alert's evidence hash, read apart), else from the record's
 * own `evidence` field (a replaced alert carries it).
 */
export function alertFromFields(json: string, reason: string, evidence?: readonly string[]): Alert {
  const flat = JSON.parse(json) as string[];
  const fields = new Map<string, string>();
  for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), String(flat[index + 1]));
  const get = (name: string): string => fields.get(name) ?? '';
  const parse = (name: string): unknown => {
    try {
      return JSON.parse(get(name) || 'null');
    } catch {
      return null;
    }
  };
  const key = parse('key');
  const resolved = fields.get('resolved');
  const campaign = get('campaign') === '1';
  const entities = list(parse('entities'));
  const silencedBy = list(parse('silenced'));
  const found = evidenceOf(evidence ?? list(parse('evidence')), campaign);
  return {
    id: get('id'),
    status: get('status') === 'resolved' ? 'resolved' : 'open',
    severity: severityOfRank(Number(get('rank'))),
    groupKey: get('group'),
    key: typeof key === 'object' && key !== null && !Array.isArray(key) ? (key as Record<string, string>) : {},
    title: get('title'),
    reason,
    rules: list(parse('rules')),
    ruleNames: list(parse('names')),
    tags: list(parse('tags')),
    count: Number(get('count')),
    suppressed: Number(get('suppressed')),
    firstSeen: new Date(Number(get('first'))).toISOString(),
    lastSeen: new Date(Number(get('last'))).toISOString(),
    ...(resolved ? { resolvedAt: new Date(Number(resolved)).toISOString() } : {}),
    detections: list(parse('detections')),
    revision: Number(get('revision')),
    ...(found ? { evidence: found } : {}),
    ...(campaign ? { campaign: true } : {}),
    ...(entities.length > 1 ? { entities } : {}),
    ...(silencedBy.length > 0 ? { silencedBy } : {}),
  };
}

/**
 * How long after an explaining alert's last detection (a flood's last minute) an entity-level
 * detection on its endpoint is still absorbed into it: the per-IP and per-user detections of a
 * flood complete within its minutes or just after. A separate attack on the same endpoint ten
 * minutes after the flood stopped is an incident of its own, though the flood's alert is still
 * open (in its quiet period).
 */
export const ABSORB_GRACE_MS = 5 * 60_000;

/** One detection to fold into an alert (the arguments of `alertFold-12.lua`). */
export interface AlertFold {
  detectionId: string;
  group: string;
  /** Event time (ms). */
  time: number;
  /** The time it is folded at (ms), see `orderTimeOf`. */
  orderTime: number;
  /** Start of the detection's window (ms). */
  windowStart: number;
  /** The id and title the alert gets if this detection opens it. */
  newId: string;
  title: string;
  ruleId: string;
  ruleName: string;
  severityRank: number;
  tags: readonly string[];
  key: Record<string, string>;
  /** The reason the returned alert carries (the detection's). */
  reason: string;
  /** Whether the detection's rule explains others, and the rules that explain it. */
  explains: boolean;
  explainedBy: readonly string[];
  /** The group of the endpoint alert that may explain it, if it names an endpoint. */
  explainerGroup?: string;
  /** The rule's campaign alert (the storm guard): group, id if this detection opens it, title and key. */
  campaign: { group: string; newId: string; title: string; key: Record<string, string> };
  /** The group keys of the entities it names besides its own, sorted (see `namedGroupsOf`). @defaultValue [] */
  named?: readonly string[];
}

/** What `alertFold` did with one detection. */
export type AlertFoldKind = 'opened' | 'escalated' | 'updated' | 'duplicate' | 'absorbed' | 'late';

/**
 * Which alert a detection went to: its group's, the incident its group or an entity it names was
 * linked into (or that entity's own), the endpoint alert that explains it, or its rule's campaign.
 */
export type AlertFoldTarget = 'own' | 'linked' | 'explainer' | 'campaign';

/** The reply for one detection: the alert after it, and the alert it replaced (now resolved), if any; or the error of that call. */
export type AlertFoldReply =
  | { ok: true; kind: AlertFoldKind; target: AlertFoldTarget; alert: Alert; replaced?: Alert }
  | { ok: false; error: StoreUnavailableError };

/** Detections the watermark has passed, in the order they are folded in. */
export interface Released {
  /** The held members (each a detection's JSON), to remove once folded. */
  members: string[];
  /** The event-time watermark (ms), undefined when nothing was ever held. */
  watermarkMs?: number;
  /** True when nothing arrived for the allowed lateness and everything held was released. */
  fallback: boolean;
}

/**
 * The id of one change of one alert, `<alert id>:<revision>:<kind>`: the field the Lua scripts
 * record it under in the unsent hash, and the seed of its delivery ids (the same change written
 * twice to the outbox carries the same delivery ids).
 */
export function changeIdOf(change: AlertChange): string {
  return `${change.alert.id}:${change.alert.revision}:${change.kind}`;
}

/** A change recorded by the Lua scripts that the notification outbox may not hold yet. */
export interface UnsentChange {
  change: AlertChange;
  /** When it was recorded (the alerter's clock, ms). */
  at: number;
}

/** Options of {@link createAlertStore}. */
export interface AlertStoreOptions {
  redis: RedisClient;
  /** `config.redis.prefix`. */
  prefix: string;
  /** TTL of the alert keys. */
  ttlMs: number;
  /** Detection ids kept per alert. */
  maxDetections: number;
  /** The reason a resolved alert carries. */
  resolvedReason: string;
  /** The quiet period, in event time: the join window and when an alert resolves. */
  quietMs: number;
  /** The allowed lateness: the watermark runs this far behind the newest detection time. */
  latenessMs: number;
  /** The storm guard: most alerts one rule opens within `stormWindowMs` of event time (0: off). */
  stormMax: number;
  stormWindowMs: number;
  /**
   * The lowest severity rank the storm guard spares: a detection of it or above never folds into
   * a campaign, so its own alert opens and pages. @defaultValue no rank spared
   */
  stormSparesRank?: number;
  /** Receives `state.round_trip` for each trip. */
  instrumentation?: Instrumentation;
  /** How long a held alert's claim lasts. @defaultValue {@link HELD_CLAIM_MS} */
  heldClaimMs?: number;
}

/**
 * How long a source partition goes without a detection before it no longer holds the watermark
 * back (at most the allowed lateness): it has read its backlog, or carries rare detections.
 */
export const PARTITION_IDLE_MS = 5000;

/**
 * How long a source partition that still has a backlog to read (its last batch ended before its
 * high watermark) holds the others back without delivering: longer than a paused partition's
 * longest backoff (30 s) and than a consumer group's rebalance after a member died (the session
 * timeout, 30 s), so a partition delayed, paused or moved is waited for, and one that no consumer
 * reads any more (its topic deleted) does not stop the alerter for good.
 */
export const PARTITION_BACKLOG_MS = 120_000;

/** Most held detections released per call. */
export const RELEASE_LIMIT = 5000;

/** Alert state in Redis. */
export interface AlertStore {
  /**
   * Holds one source partition's detections until the watermark passes them, in one call:
   * `orderTime` decides when, and in what order, each is folded. Returns how many arrived late
   * (behind what was already folded). `behind`: the batch ended before the partition's high
   * watermark, so it has more to read and holds the watermark back until it delivers it (for
   * {@link PARTITION_BACKLOG_MS} at most). Called with no items, it records only that.
   */
  hold(items: readonly { orderTime: number; time: number; json: string }[], wallNowMs: number, partition: string, behind?: boolean): Promise<{ late: number }>;
  /**
   * Marks source partitions as active, as if each had just delivered a detection older than any:
   * at start, a partition not read yet then holds the watermark back instead of being raced past
   * by one read first: for the idle time at most, or, when `behind` (the group's committed offset
   * is short of the high watermark: a backlog), until it delivers (for {@link PARTITION_BACKLOG_MS} at most).
   */
  expect(partitions: readonly { partition: string; behind: boolean }[], wallNowMs: number): Promise<void>;
  /** The held detections the watermark has passed (all, when none arrived for the lateness), in fold order. */
  release(wallNowMs: number): Promise<Released>;
  /** Forgets held detections once folded. */
  forget(members: readonly string[]): Promise<void>;
  /** Folds released detections into alerts in one round trip, in order. One reply per item. */
  fold(items: readonly AlertFold[], wallNowMs: number): Promise<AlertFoldReply[]>;
  /**
   * The alerts, with their evidence read from their groups' evidence hashes (one round trip). Only
   * for an alert its group still holds (the one a fold returned, or one just settled), not a replaced one.
   */
  withEvidence(alerts: readonly Alert[]): Promise<Alert[]>;
  /**
   * Resolves the open alerts whose quiet period passed (in event time, or by the wall-clock
   * fallback), and returns them. `mayUseWallClock` is asked, with how many alerts only the wall
   * clock would resolve, whether the fallback may: false holds them open (the detections that
   * would have kept them open may still be on their way). @defaultValue always
   */
  settle(wallNowMs: number, mayUseWallClock?: (waiting: number) => Promise<boolean>): Promise<{ alert: Alert; how: 'event' | 'wall' }[]>;
  /** The changes recorded unsent, recorded at or before `beforeMs`, oldest first (then by revision). */
  unsent(beforeMs: number): Promise<UnsentChange[]>;
  /** Forgets changes the outbox now holds. */
  markSent(changes: readonly AlertChange[]): Promise<void>;
  /**
   * Records on each alert the silences that held back a notification of it (one round trip), so
   * its later documents say so too; an alert its group no longer holds (replaced since) is left.
   * `held` (the opening or escalation not sent, with its reason) puts it among the held alerts,
   * to be notified once no silence matches it ({@link heldAlerts}).
   * @returns each alert's silence ids after the call, by alert id (for those still held)
   */
  markSilenced(marks: readonly { alert: Pick<Alert, 'id' | 'groupKey'>; silences: readonly string[]; held?: { kind: 'opened' | 'escalated'; reason: string } }[]): Promise<Map<string, string[]>>;
  /**
   * The held alerts (a silence kept their opening or an escalation from on-call), as they are
   * now: `alert` (with the held change's reason) and the kind held when the group still holds it
   * open, else undefined (closed or replaced: to be forgotten).
   */
  heldAlerts(): Promise<{ alertId: string; group: string; held?: { kind: 'opened' | 'escalated'; alert: Alert; seq: string } }[]>;
  /**
   * Forgets held alerts (one round trip), with their claims: notified since, or closed. Given the
   * hold notified (`seq`, from {@link heldAlerts}), a hold recorded since is kept.
   */
  clearHeld(alerts: readonly { alertId: string; group: string; seq?: string }[]): Promise<void>;
  /**
   * Takes held alerts to notify them, for `heldClaimMs`: the ids this caller took (another
   * instance may have taken the others). They stay on the index: a claim that is neither cleared
   * nor given back (the process died) ends, and a later sweep takes them again.
   */
  claimHeld(alerts: readonly { alertId: string; group: string }[]): Promise<Set<string>>;
  /**
   * Forgets entity links whose alert is gone (expired, or replaced by another of its group), looking
   * at about `count` links from where the last call stopped: the links hash's TTL is renewed by
   * every new link, so without it every entity ever linked stays in Redis. One round trip.
   * @returns links looked at, links deleted, and whether this call ended a pass over the hash
   */
  pruneLinks(count: number): Promise<{ scanned: number; deleted: number; passEnded: boolean }>;
  /** Gives claims back (their notification failed): the next sweep may take them again. */
  restoreHeld(alerts: readonly { alertId: string; group: string }[]): Promise<void>;
}

/** How long a held alert's claim lasts unless cleared or given back (a notification handed to the outbox takes well under it). */
export const HELD_CLAIM_MS = 60_000;

/** The most silence ids an alert records (the first ones stay): a silence list per alert, not a log. */
export const MAX_ALERT_SILENCES = 10;

/** Runs a pipeline in one round trip: each command's reply, or the first failure as unavailable. */
async function execAll(pipeline: ReturnType<RedisClient['pipeline']>): Promise<unknown[]> {
  let results: [Error | null, unknown][];
  try {
    results = (await pipeline.exec()) ?? [];
  } catch (error) {
    throw unavailable(error);
  }
  const failure = results.find(([error]) => error !== null)?.[0];
  if (failure) throw unavailable(failure);
  return results.map(([, value]) => value);
}

function unavailable(error: unknown): StoreUnavailableError {
  return new StoreUnavailableError('redis', `alert state unavailable (${errorMessage(error)})`, error);
}

/** Creates the alert store; registers the Lua scripts on the client. */
export function createAlertStore(options: AlertStoreOptions): AlertStore {
  const { redis, ttlMs, maxDetections, resolvedReason, quietMs, latenessMs } = options;
  /** When alerts held open by the wall-clock fallback last had their TTL renewed (see settle). */
  let heldRenewedAt = Number.NEGATIVE_INFINITY;

  const heldClaimMs = options.heldClaimMs ?? HELD_CLAIM_MS;
  const keys = alertKeys(options.prefix);
  const tripOptions = { operation: 'alert state', ...(options.instrumentation ? { events: options.instrumentation } : {}) };
  defineScripts(redis);

  /**
   * Alerts the wall-clock fallback holds open while the pipeline is behind get no fold, which
   * is what renews their keys' TTL: a stall longer than the TTL (a day at least) let an open
   * alert's keys expire, so it was never resolved (its page stayed open, repeated by the
   * notifier) and the incident's next detection opened a second one. Renewed while held, at
   * most every tenth of the TTL.
   */
  async function keepHeldOpen(groups: readonly string[], now: number): Promise<void> {
    if (now - heldRenewedAt < ttlMs / 10) return;
    try {
      const pipeline = redis.pipeline();
      for (const group of groups) pipeline.pexpire(keys.alert(group), ttlMs).pexpire(keys.evidence(group), ttlMs);
      pipeline.pexpire(keys.open, ttlMs).pexpire(keys.wall, ttlMs).pexpire(keys.clock, ttlMs);
      await pipeline.exec();
    } catch (error) {
      throw unavailable(error);
    }
    heldRenewedAt = now;
  }

  async function one(call: Parameters<typeof roundTrip>[1][number]): Promise<unknown> {
    const [reply] = await roundTrip(redis, [call], tripOptions);
    if (!reply?.ok) throw unavailable(reply?.error ?? new Error('no reply'));
    return reply.value;
  }

  return {
    async hold(items, wallNowMs, partition, behind = false) {
      const value = (await one({
        script: 'alertHold',
        keys: [keys.held, keys.clock],
        args: [wallNowMs, ttlMs, partition, behind ? 1 : 0, ...items.flatMap((item) => [item.orderTime, item.time, item.json])],
      })) as [string | null, number];
      return { late: Number(value[1]) };
    },

    async expect(partitions, wallNowMs) {
      if (partitions.length === 0) return;
      const pipeline = redis.pipeline();
      for (const { partition, behind } of partitions) {
        pipeline.hsetnx(keys.clock, `max:${partition}`, '0');
        pipeline.hset(keys.clock, `arrived:${partition}`, wallNowMs, `behind:${partition}`, behind ? 1 : 0);
      }
      pipeline.pexpire(keys.clock, ttlMs);
      await execAll(pipeline);
    },

    async release(wallNowMs) {
      const value = (await one({
        script: 'alertRelease',
        keys: [keys.held, keys.clock],
        args: [wallNowMs, latenessMs, RELEASE_LIMIT, Math.min(latenessMs, PARTITION_IDLE_MS), PARTITION_BACKLOG_MS],
      })) as (string | number | null)[];
      const [watermark, fallback, ...flat] = value;
      const members: string[] = [];
      for (let index = 0; index + 1 < flat.length; index += 2) members.push(String(flat[index]));
      return { members, fallback: Number(fallback) === 1, ...(typeof watermark === 'string' ? { watermarkMs: Number(watermark) } : {}) };
    },

    async forget(members) {
      if (members.length === 0) return;
      try {
        await redis.zrem(keys.held, ...members);
      } catch (error) {
        throw unavailable(error);
      }
    },

    async fold(items, wallNowMs) {
      if (items.length === 0) return [];
      const replies = await roundTrip(
        redis,
        items.map((item) => ({
          script: 'alertFold' as const,
          keys: [
            keys.alert(item.group),
            keys.open,
            keys.unsent,
            keys.clock,
            keys.wall,
            keys.evidence(item.group),
            keys.alert(item.explainerGroup ?? item.group),
            keys.evidence(item.explainerGroup ?? item.group),
            keys.storm(item.ruleId),
            keys.alert(item.campaign.group),
            keys.evidence(item.campaign.group),
            keys.links,
          ],
          args: [
            item.detectionId,
            item.time,
            item.orderTime,
            wallNowMs,
            quietMs,
            latenessMs,
            item.newId,
            item.ruleId,
            item.ruleName,
            item.severityRank,
            JSON.stringify(item.tags),
            item.title,
            JSON.stringify(item.key),
            item.group,
            ttlMs,
            maxDetections,
            item.reason,
            resolvedReason,
            item.windowStart,
            item.explains ? 1 : 0,
            JSON.stringify(item.explainedBy),
            item.explainerGroup ?? '',
            item.severityRank >= (options.stormSparesRank ?? Number.POSITIVE_INFINITY) ? 0 : options.stormMax,
            options.stormWindowMs,
            item.campaign.group,
            item.campaign.newId,
            item.campaign.title,
            JSON.stringify(item.campaign.key),
            Object.entries(item.key)
              .map(([field, value]) => `${field}=${value}`)
              .join(',') || item.group,
            ABSORB_GRACE_MS,
            keys.alert(''),
            JSON.stringify(item.named ?? []),
            MAX_INCIDENT_ENTITIES,
            USER_GROUP_PREFIX,
            EVIDENCE_IDS_KEPT,
            EVIDENCE_ENTITIES_LISTED,
          ],
        })),
        tripOptions,
      );
      return items.map((item, position): AlertFoldReply => {
        const reply = replies[position];
        if (!reply?.ok) {
          const error = reply?.error ?? new Error('no reply');
          return { ok: false, error: new StoreUnavailableError('redis', `alert state: ${error.message}`, error) };
        }
        const [kind, fields, replaced, target] = reply.value as [AlertFoldKind, string, string | null, AlertFoldTarget];
        return {
          ok: true,
          kind,
          target,
          alert: alertFromFields(fields, item.reason),
          ...(typeof replaced === 'string' ? { replaced: alertFromFields(replaced, resolvedReason) } : {}),
        };
      });
    },

    async withEvidence(alerts) {
      // A replaced alert carries its evidence already: its group's hash now holds its successor's.
      const wanted = alerts.filter((alert) => alert.evidence === undefined);
      if (wanted.length === 0) return [...alerts];
      let flats: (string[] | undefined)[];
      try {
        const pipeline = redis.pipeline();
        for (const alert of wanted) pipeline.hgetall(keys.evidence(alert.groupKey));
        const results = (await pipeline.exec()) ?? [];
        flats = results.map(([error, value]) => {
          if (error) throw error;
          const record = value as Record<string, string>;
          return Object.keys(record).length === 0 ? undefined : Object.entries(record).flat();
        });
      } catch (error) {
        throw unavailable(error);
      }
      const found = new Map(wanted.map((alert, position) => [alert, flats[position]]));
      return alerts.map((alert) => {
        const flat = found.get(alert);
        const evidence = flat === undefined ? undefined : evidenceOf(flat, alert.campaign === true);
        return evidence === undefined ? alert : { ...alert, evidence };
      });
    },

    async settle(wallNowMs, mayUseWallClock) {
      let byEventTime: string[];
      let byWall: string[];
      try {
        const folded = await redis.hget(keys.clock, 'folded');
        [byEventTime, byWall] = await Promise.all([
          folded === null ? Promise.resolve([]) : redis.zrangebyscore(keys.open, '-inf', `(${Number(folded) - quietMs}`),
          redis.zrangebyscore(keys.wall, '-inf', wallNowMs - quietMs - latenessMs),
        ]);
      } catch (error) {
        throw unavailable(error);
      }
      const wallOnly = byWall.filter((group) => !byEventTime.includes(group));
      // Held: the script is told a lateness no wall clock reaches, so it resolves in event time only.
      const wallAllowed = wallOnly.length === 0 || mayUseWallClock === undefined || (await mayUseWallClock(wallOnly.length));
      if (!wallAllowed) await keepHeldOpen(wallOnly, wallNowMs);
      const groups = [...new Set([...byEventTime, ...(wallAllowed ? byWall : [])])].sort();
      if (groups.length === 0) return [];
      const replies = await roundTrip(
        redis,
        groups.map((group) => ({
          script: 'alertSettle' as const,
          keys: [keys.alert(group), keys.open, keys.unsent, keys.clock, keys.wall],
          args: [wallNowMs, quietMs, wallAllowed ? latenessMs : Number.MAX_SAFE_INTEGER, group, ttlMs, resolvedReason],
        })),
        tripOptions,
      );
      // A group another instance resolved first, or that got a detection meanwhile, replies false.
      return replies.flatMap((reply) => {
        if (!reply.ok || !Array.isArray(reply.value)) return [];
        const [fields, how] = reply.value as [string, 'event' | 'wall'];
        return [{ alert: alertFromFields(fields, resolvedReason), how }];
      });
    },

    async unsent(beforeMs) {
      let recorded: Record<string, string>;
      try {
        recorded = await redis.hgetall(keys.unsent);
      } catch (error) {
        throw unavailable(error);
      }
      const found: UnsentChange[] = [];
      for (const value of Object.values(recorded)) {
        const parsed = unsentRecord.safeParse(safeJson(value));
        // Written by our own script: a record that does not parse is a bug, not worth a jam.
        if (!parsed.success || parsed.data.at > beforeMs) continue;
        const { kind, fields, reason, at } = parsed.data;
        found.push({ change: { kind, alert: alertFromFields(fields, reason) }, at });
      }
      // Oldest first; within one alert, by revision: the order the changes happened in.
      return found.sort((a, b) => a.at - b.at || a.change.alert.revision - b.change.alert.revision);
    },

    async markSilenced(marks) {
      const result = new Map<string, string[]>();
      if (marks.length === 0) return result;
      const replies = await roundTrip(
        redis,
        marks.map(({ alert, silences, held }) => ({
          script: 'alertSilence' as const,
          keys: [keys.alert(alert.groupKey), keys.heldBySilence],
          args: [alert.id, MAX_ALERT_SILENCES, held?.kind ?? '', held?.reason ?? '', alert.groupKey, ttlMs, ...silences],
        })),
        tripOptions,
      );
      replies.forEach((reply, position) => {
        if (!reply.ok) throw unavailable(reply.error);
        const id = marks[position]?.alert.id;
        if (id !== undefined && typeof reply.value === 'string') result.set(id, list(safeJson(reply.value)));
      });
      return result;
    },

    async heldAlerts() {
      let index: Record<string, string>;
      try {
        index = await redis.hgetall(keys.heldBySilence);
      } catch (error) {
        throw unavailable(error);
      }
      const entries = Object.entries(index);
      if (entries.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const [, group] of entries) pipeline.hgetall(keys.alert(group));
      // Kept while alerts are held (in the same round trip): a silence lasts up to 30 days, an
      // incident may stay open as long, and the index's own expiry is set only when a hold is recorded.
      pipeline.pexpire(keys.heldBySilence, ttlMs);
      const hashes = (await execAll(pipeline)).slice(0, entries.length).map((value) => (value ?? {}) as Record<string, string>);
      return entries.map(([alertId, group], position) => {
        const fields = hashes[position] ?? {};
        const kind = fields.held;
        if (fields.id !== alertId || fields.status !== 'open' || (kind !== 'opened' && kind !== 'escalated')) return { alertId, group };
        const alert = alertFromFields(JSON.stringify(Object.entries(fields).flat()), fields.heldReason ?? '');
        return { alertId, group, held: { kind, alert, seq: fields.heldSeq ?? '' } };
      });
    },

    async claimHeld(alerts) {
      if (alerts.length === 0) return new Set<string>();
      const [reply] = await roundTrip(
        redis,
        [{ script: 'alertHeldClaim' as const, keys: [keys.heldBySilence, keys.heldClaims], args: [heldClaimMs, ttlMs, ...alerts.map(({ alertId }) => alertId)] }],
        tripOptions,
      );
      if (reply === undefined || !reply.ok) throw unavailable(reply?.error);
      return new Set(Array.isArray(reply.value) ? reply.value.map(String) : []);
    },

    async pruneLinks(count) {
      const [reply] = await roundTrip(redis, [{ script: 'alertLinksPrune', keys: [keys.links, keys.linksCursor], args: [keys.alert(''), count, ttlMs] }], tripOptions);
      if (reply === undefined || !reply.ok) throw unavailable(reply?.error ?? new Error('no reply'));
      const [scanned, deleted, ended] = Array.isArray(reply.value) ? (reply.value as unknown[]).map(Number) : [];
      return { scanned: scanned ?? 0, deleted: deleted ?? 0, passEnded: ended === 1 };
    },

    async restoreHeld(alerts) {
      if (alerts.length === 0) return;
      // On the index already (a claim leaves it there): set again all the same, should a clear
      // have raced the failed notification.
      await execAll(
        redis
          .pipeline()
          .hset(keys.heldBySilence, Object.fromEntries(alerts.map(({ alertId, group }) => [alertId, group])))
          .pexpire(keys.heldBySilence, ttlMs)
          .hdel(keys.heldClaims, ...alerts.map(({ alertId }) => alertId)),
      );
    },

    async clearHeld(alerts) {
      if (alerts.length === 0) return;
      const replies = await roundTrip(
        redis,
        alerts.map(({ alertId, group, seq }) => ({ script: 'alertHeldClear' as const, keys: [keys.alert(group), keys.heldBySilence, keys.heldClaims], args: [alertId, seq ?? ''] })),
        tripOptions,
      );
      for (const reply of replies) if (!reply.ok) throw unavailable(reply.error);
    },

    async markSent(changes) {
      if (changes.length === 0) return;
      try {
        await redis.hdel(keys.unsent, ...changes.map(changeIdOf));
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}
