import type { AUTH_CONTEXTS, POLICY_KINDS, VigilEventInput } from '../../schemas';
import { eventId, objectOf, parseJsonBatch, present, type ContractMethod, type EventSuffix } from './common';
import { ADAPTER_LABELS, type AdapterReject, type AdapterResult, type AdapterSettings, type GroupKeys } from './types';

/** One policy outcome a gateway record shows, before it becomes a policy event. */
export interface PolicySignal {
  kind: (typeof POLICY_KINDS)[number];
  name: string;
  outcome: 'pass' | 'fail';
  reason?: string;
  authContext?: (typeof AUTH_CONTEXTS)[number];
  scopes?: string[];
  /** `status` when the signal rests on the HTTP status alone (a heuristic); absent when the record proves it. */
  derived?: 'status';
}

/**
 * One HTTP request as a gateway logged it, in the contract's terms: what a format reads out of
 * its record, so every format builds its events the same way ({@link httpRecordEvents}).
 */
export interface HttpRecord {
  /** The gateway's request id, when it logged one; the event ids derive from it. */
  requestId?: string;
  /** What identifies the record when there is no request id: hashed into the ids. */
  fallbackKey: string;
  traceId?: string;
  time: string;
  method: ContractMethod;
  path: string;
  route: string;
  status: number;
  latencyMs: number;
  bytesIn?: number;
  bytesOut?: number;
  api: string;
  upstreamService?: string;
  instance?: string;
  consumerId?: string;
  userId?: string;
  clientIp?: string;
  userAgent?: string;
  /** Where the record's policy group is looked up. */
  groupKeys: GroupKeys;
  /** Format-specific labels (`workspace`), beside `adapter` and `derived`. */
  labels?: Record<string, string>;
  policies: PolicySignal[];
}

/** The events of one record, or why they can't be built. */
export type RecordEvents = { ok: true; events: VigilEventInput[] } | { ok: false; message: string };

const SUFFIX: Record<PolicySignal['kind'], EventSuffix> = {
  authn: 'authn',
  authz: 'authz',
  rate_limit: 'rate_limit',
  json_threat: 'json_threat',
  xml_threat: 'xml_threat',
  custom: 'custom',
};

/** Describes where a group was looked for, for the dead letter's reason. */
export function describeGroupKeys(keys: GroupKeys): string {
  const parts = [
    keys.route !== undefined ? `route "${keys.route}"` : undefined,
    keys.service !== undefined ? `service "${keys.service}"` : undefined,
    keys.api !== undefined ? `api "${keys.api}"` : undefined,
    keys.tags !== undefined && keys.tags.length > 0 ? `tags [${keys.tags.join(', ')}]` : undefined,
  ].filter((part): part is string => part !== undefined);
  return parts.length > 0 ? parts.join(', ') : 'no route, service or tag';
}

/**
 * The contract events of one record: one invocation, plus one policy event per signal (at most
 * one per kind, since the kind is the id's suffix). A record with a policy signal needs a policy
 * group (the contract requires one on policy events): when the map resolves none, the whole
 * record is refused, so that fixing the map and redriving it produces all its events at once,
 * never an invocation that a later copy with a group would contradict.
 */
export function httpRecordEvents(format: string, record: HttpRecord, settings: AdapterSettings): RecordEvents {
  const group = settings.groups.resolve(record.groupKeys);
  if (group === undefined && record.policies.length > 0) {
    return {
      ok: false,
      message: `no policy group for ${describeGroupKeys(record.groupKeys)}: add one of them (or a default) to VIGIL_ADAPT_GROUPS`,
    };
  }
  const id = (suffix: EventSuffix): string => eventId(format, record.requestId, record.fallbackKey, suffix);
  const correlation = {
    ...(record.requestId !== undefined ? { requestId: record.requestId.slice(0, 256) } : {}),
    ...(record.traceId !== undefined ? { traceId: record.traceId } : {}),
  };
  const actor = {
    ...(record.userId !== undefined ? { userId: record.userId } : {}),
    ...(record.consumerId !== undefined ? { consumerId: record.consumerId } : {}),
  };
  const client = {
    ...(record.clientIp !== undefined ? { ip: record.clientIp } : {}),
    ...(record.userAgent !== undefined ? { userAgent: record.userAgent } : {}),
  };
  const instance = record.instance ?? settings.instance;
  const envelope = {
    schemaVersion: 1 as const,
    time: record.time,
    source: {
      service: settings.service,
      kind: settings.kind,
      ...(instance !== undefined ? { instance } : {}),
      ...(settings.environment !== undefined ? { environment: settings.environment } : {}),
    },
    correlation,
    actor,
    client,
  };
  const labels = { ...record.labels, [ADAPTER_LABELS.format]: format };
  const resource = { api: record.api, method: record.method, path: record.path };
  const events: VigilEventInput[] = [
    {
      ...envelope,
      id: id('inv'),
      family: 'invocation',
      labels,
      invocation: {
        resource,
        route: record.route,
        status: record.status,
        latencyMs: record.latencyMs,
        ...(record.bytesIn !== undefined ? { bytesIn: record.bytesIn } : {}),
        ...(record.bytesOut !== undefined ? { bytesOut: record.bytesOut } : {}),
        ...(record.upstreamService !== undefined ? { upstreamService: record.upstreamService } : {}),
        ...(group !== undefined ? { group } : {}),
      },
    },
  ];
  const seen = new Set<PolicySignal['kind']>();
  for (const signal of record.policies) {
    if (seen.has(signal.kind) || group === undefined) continue;
    seen.add(signal.kind);
    events.push({
      ...envelope,
      id: id(SUFFIX[signal.kind]),
      family: 'policy',
      labels: signal.derived !== undefined ? { ...labels, [ADAPTER_LABELS.derived]: signal.derived } : labels,
      policy: {
        kind: signal.kind,
        name: signal.name,
        outcome: signal.outcome,
        ...(signal.reason !== undefined ? { reason: signal.reason } : {}),
        ...(signal.authContext !== undefined ? { authContext: signal.authContext } : {}),
        ...(signal.scopes !== undefined && signal.scopes.length > 0 ? { scopes: signal.scopes } : {}),
        group,
        resource,
      },
    });
  }
  return { ok: true, events };
}

/** A latency the contract takes: a finite number of milliseconds from 0 to an hour. */
export function latencyOf(value: number | undefined): number {
  if (value === undefined || value < 0) return 0;
  return Math.min(value, 3_600_000);
}

/** A byte count the contract takes: a whole number ≥ 0, or absent. */
export function byteCount(value: number | undefined): number | undefined {
  return value !== undefined && value >= 0 ? Math.floor(value) : undefined;
}

/** What a format makes of one record of a batch. */
export type RecordRead = { record: HttpRecord } | { skip: string } | { reject: AdapterReject['reason']; message: string };

/**
 * Translates a message of one JSON record or an array of them with a format's reader: the
 * common frame of every JSON gateway format (Kong, APISIX). Never throws.
 */
export function translateJsonBatch(
  format: string,
  value: Uint8Array,
  settings: AdapterSettings,
  read: (record: Record<string, unknown>, settings: AdapterSettings) => RecordRead,
): AdapterResult {
  const result: AdapterResult = { events: [], rejected: [], skipped: [] };
  const batch = parseJsonBatch(value);
  if (!batch.ok) {
    result.rejected.push({ reason: 'adapter_unparseable', message: `not a ${format} message: ${batch.message}`, record: 0 });
    return result;
  }
  batch.records.forEach((item, index) => {
    const raw = objectOf(item);
    if (raw === undefined) {
      result.rejected.push({ reason: 'adapter_unparseable', message: `record ${index}: expected a JSON object, got ${Array.isArray(item) ? 'an array' : item === null ? 'null' : typeof item}`, record: index });
      return;
    }
    const outcome = read(raw, settings);
    if ('skip' in outcome) {
      result.skipped.push({ reason: outcome.skip, record: index });
      return;
    }
    if ('reject' in outcome) {
      result.rejected.push({ reason: outcome.reject, message: `record ${index}: ${outcome.message}`, record: index });
      return;
    }
    const built = httpRecordEvents(format, outcome.record, settings);
    if (built.ok) result.events.push(...built.events);
    else result.rejected.push({ reason: 'adapter_unmapped', message: `record ${index}: ${built.message}`, record: index });
  });
  return result;
}

/** The scheme of a `WWW-Authenticate` challenge, lower-cased (`key`, `basic`, `bearer`), and its `error` parameter. */
export function challengeOf(header: string | undefined): { scheme: string; error?: string } | undefined {
  const scheme = header === undefined ? null : /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)/.exec(header);
  if (scheme?.[1] === undefined || header === undefined) return undefined;
  const error = /\berror\s*=\s*"?([A-Za-z0-9_.-]{1,64})"?/.exec(header)?.[1];
  return { scheme: scheme[1].toLowerCase(), ...(error !== undefined ? { error } : {}) };
}

/** An identifier the contract takes (1–256 characters), from a number or text; placeholders read as absent. */
export function identifierOf(value: unknown): string | undefined {
  return present(value)?.slice(0, 256);
}

/** Strings of an array (a route's or service's tags); anything else is ignored. */
export function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && item !== '') : [];
}
