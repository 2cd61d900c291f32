import type { AUTH_CONTEXTS, PolicyKind, VigilEventInput } from '../../schemas';
import { eventId, parseJsonBatch, type ContractMethod, type EventSuffix } from './common';
import { hasControl, latencyOf, objectOf } from './fields';
import { ADAPTER_LABELS, type AdapterReject, type AdapterResult, type AdapterSettings, type GroupKeys } from './types';

/** One policy outcome a gateway record shows, before it becomes a policy event. */
export interface PolicySignal {
  kind: PolicyKind;
  name: string;
  outcome: 'pass' | 'fail';
  reason?: string;
  authContext?: (typeof AUTH_CONTEXTS)[number];
  scopes?: string[];
  /** `status` when the signal rests on the HTTP status alone (a heuristic); absent when the record proves it. */
  derived?: 'status';
}

/**
 * One HTTP request as a gateway logged it, in the contract's terms: what every format reads out
 * of its own record (after its own checks and field guards), so that all six build their events
 * in one place ({@link recordEvents}).
 */
export interface HttpRecord {
  /** The gateway's request id, when it logged one; the event ids name it. */
  requestId?: string;
  /**
   * What identifies the record among those sharing its request id (or, without one, among all):
   * the record's own facts, never anything Vigil adds; hashed into the ids ({@link eventId}).
   */
  recordKey: string;
  traceId?: string;
  /** The record's time; with {@link HttpRecord.timeIsStart}, when the request started. */
  time: string;
  /**
   * `time` is when the request started (Kong's `started_at`, APISIX's `start_time`, WSO2's
   * `requestTimestamp`): the events take the time the gateway answered, start plus `latencyMs`. A
   * client holding a request open (a login body sent a byte at a time) made its events as old as
   * its start: past the allowed lateness, late to every stateful rule.
   */
  timeIsStart?: boolean;
  method: ContractMethod;
  path: string;
  route: string;
  /**
   * Absent only where a format proves a policy outcome without an HTTP status (a WSO2 fault
   * event without `proxyResponseCode`): its policy events are built, its invocation is not.
   */
  status?: number;
  latencyMs: number;
  bytesIn?: number;
  bytesOut?: number;
  /** `resource.api`; when absent, the resolved group names it. */
  api?: string;
  upstreamService?: string;
  instance?: string;
  consumerId?: string;
  userId?: string;
  clientIp?: string;
  userAgent?: string;
  /** Where the record's group is looked up. */
  groupKeys: GroupKeys;
  /** The record's own field behind a group key (`apiContext` for `service`), named in the reject. */
  groupFields?: Partial<Record<keyof GroupKeys, string>>;
  /** Format-specific labels (`workspace`, `response_flags`), beside `adapter` and `derived`. */
  labels?: Record<string, string>;
  policies: readonly PolicySignal[];
}

/**
 * When a request that started at `start` (an ISO time) was answered: start plus its latency, to
 * the millisecond; `start` itself where the sum is past the last date there is (a record's absurd
 * time stays the record's problem, refused by the contract, not an exception for its whole batch).
 */
function answeredAt(start: string, latencyMs: number): string {
  const latency = Math.round(latencyOf(latencyMs));
  const answered = new Date(Date.parse(start) + latency);
  return latency === 0 || Number.isNaN(answered.getTime()) ? start : answered.toISOString();
}

const quoted = (value: string | undefined): string => (value === undefined ? '(none)' : JSON.stringify(value));

/** Where a group was looked for, every key named, for the dead letter's reason. */
export function describeGroupKeys(keys: GroupKeys, fields: HttpRecord['groupFields'] = {}): string {
  const name = (key: keyof GroupKeys): string => (fields[key] !== undefined ? `${key} (${fields[key]})` : key);
  const tags = keys.tags !== undefined && keys.tags.length > 0 ? `[${keys.tags.map((tag) => JSON.stringify(tag)).join(', ')}]` : '(none)';
  return `${name('route')} ${quoted(keys.route)}, ${name('service')} ${quoted(keys.service)}, ${name('api')} ${quoted(keys.api)}, ${name('tags')} ${tags}`;
}

/**
 * Appends the contract events of one record to `out`: one invocation, plus one policy event per
 * signal (at most one per kind, since the kind is the id's suffix). Every event carries the
 * record's group. A record whose group the map cannot resolve is refused whole, as
 * `adapter_unmapped`, policy events or not: fixing the map (or setting a default) and redriving
 * it then produces all its events at once, never an invocation that a later copy with a group
 * would contradict. A derived signal of a kind `settings.derivedPolicies` leaves out becomes no
 * event, only an entry in `out.droppedDerived`. Returns whether the record became events.
 */
export function recordEvents(format: string, record: HttpRecord, index: number, settings: AdapterSettings, out: AdapterResult): boolean {
  const group = settings.groups.resolve(record.groupKeys);
  if (group === undefined) {
    out.rejected.push({
      reason: 'adapter_unmapped',
      record: index,
      message: `record ${index}: no group for ${describeGroupKeys(record.groupKeys, record.groupFields)} and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS`,
    });
    return false;
  }
  const id = (suffix: EventSuffix): string => eventId(format, record.requestId, record.recordKey, suffix);
  const instance = record.instance ?? settings.instance;
  const envelope = {
    schemaVersion: 1 as const,
    time: record.timeIsStart === true ? answeredAt(record.time, record.latencyMs) : record.time,
    source: {
      service: settings.service,
      kind: settings.kind,
      ...(instance !== undefined ? { instance } : {}),
      ...(settings.environment !== undefined ? { environment: settings.environment } : {}),
    },
    correlation: {
      ...(record.requestId !== undefined ? { requestId: record.requestId.slice(0, 256) } : {}),
      ...(record.traceId !== undefined ? { traceId: record.traceId } : {}),
    },
    actor: {
      ...(record.userId !== undefined ? { userId: record.userId } : {}),
      ...(record.consumerId !== undefined ? { consumerId: record.consumerId } : {}),
    },
    client: {
      ...(record.clientIp !== undefined ? { ip: record.clientIp } : {}),
      ...(record.userAgent !== undefined ? { userAgent: record.userAgent } : {}),
    },
  };
  const labels = { ...record.labels, [ADAPTER_LABELS.format]: format };
  const resource = { api: record.api ?? group, method: record.method, path: record.path };
  if (record.status !== undefined) {
    out.events.push({
      ...envelope,
      id: id('inv'),
      family: 'invocation',
      labels,
      invocation: {
        resource,
        route: record.route,
        status: record.status,
        latencyMs: latencyOf(record.latencyMs),
        ...(record.bytesIn !== undefined ? { bytesIn: record.bytesIn } : {}),
        ...(record.bytesOut !== undefined ? { bytesOut: record.bytesOut } : {}),
        ...(record.upstreamService !== undefined ? { upstreamService: record.upstreamService } : {}),
        group,
      },
    });
  }
  const seen = new Set<PolicySignal['kind']>();
  for (const signal of record.policies) {
    if (seen.has(signal.kind)) continue;
    seen.add(signal.kind);
    // After `seen`: a kind's event is its first signal under every setting, so a record's id
    // names the same event or none, never another one, when the setting changes between reads.
    if (signal.derived !== undefined && settings.derivedPolicies !== undefined && !settings.derivedPolicies.includes(signal.kind)) {
      out.droppedDerived.push({ kind: signal.kind, record: index });
      continue;
    }
    out.events.push({
      ...envelope,
      id: id(signal.kind),
      family: 'policy',
      labels: signal.derived !== undefined ? { ...labels, [ADAPTER_LABELS.derived]: signal.derived } : labels,
      policy: {
        kind: signal.kind,
        name: signal.name.slice(0, 256),
        outcome: signal.outcome,
        ...(signal.reason !== undefined && !hasControl(signal.reason) ? { reason: signal.reason.slice(0, 1024) } : {}),
        ...(signal.authContext !== undefined ? { authContext: signal.authContext } : {}),
        ...(signal.scopes !== undefined && signal.scopes.length > 0 ? { scopes: signal.scopes } : {}),
        group,
        resource,
      },
    } satisfies VigilEventInput);
  }
  return true;
}

/** What a format makes of one record of a batch. */
export type RecordRead = { record: HttpRecord } | { skip: string } | { reject: AdapterReject['reason']; message: string };

/**
 * The record a file shipper wrapped: Vector's and Filebeat's JSON put the log line in `message`,
 * Fluent Bit's tail input in `log`, beside fields of their own (file, host, time). An object with
 * no `request` object of its own (Kong's and APISIX's records have one, and may carry a custom
 * `message` field beside it) whose `message` or `log` is one JSON object's text is that object,
 * checked for depth as the message was; anything else stays as it is.
 */
function shippedLine(record: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (record === undefined || objectOf(record.request) !== undefined) return record;
  for (const field of ['message', 'log']) {
    const line = record[field];
    if (typeof line !== 'string' || !line.trimStart().startsWith('{')) continue;
    const parsed = parseJsonBatch(Buffer.from(line));
    const [inner] = parsed.ok && parsed.records.length === 1 ? parsed.records : [];
    const object = objectOf(inner);
    if (object !== undefined && !Array.isArray(inner)) return object;
  }
  return record;
}

/**
 * Translates a message of one JSON record or an array of them with a format's reader: the
 * common frame of the JSON batch formats (Kong, APISIX), a shipper's envelope unwrapped. Never throws.
 */
export function translateJsonBatch(
  format: string,
  value: Uint8Array,
  settings: AdapterSettings,
  read: (record: Record<string, unknown>, settings: AdapterSettings) => RecordRead,
): AdapterResult {
  const result: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
  const batch = parseJsonBatch(value);
  if (!batch.ok) {
    result.rejected.push({ reason: 'adapter_unparseable', message: `not a ${format} message: ${batch.message}`, record: 0 });
    return result;
  }
  batch.records.forEach((item, index) => {
    const raw = shippedLine(objectOf(item));
    if (raw === undefined) {
      result.rejected.push({ reason: 'adapter_unparseable', message: `record ${index}: expected a JSON object, got ${Array.isArray(item) ? 'an array' : item === null ? 'null' : typeof item}`, record: index });
      return;
    }
    const outcome = read(raw, settings);
    if ('skip' in outcome) result.skipped.push({ reason: outcome.skip, record: index });
    else if ('reject' in outcome) result.rejected.push({ reason: outcome.reject, message: `record ${index}: ${outcome.message}`, record: index });
    else recordEvents(format, outcome.record, index, settings, result);
  });
  return result;
}
