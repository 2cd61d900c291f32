import { isIP } from 'node:net';
import type { VigilEventInput } from '../../schemas';
import { contractMethod, eventId, splitUri, type EventSuffix } from './common';
import { ADAPTER_LABELS, type AdapterResult, type AdapterSettings, type GroupKeys } from './types';

/** The policy kinds an HTTP access record can prove (device events never come from a gateway log). */
export type SignalKind = 'authn' | 'authz' | 'rate_limit' | 'json_threat' | 'xml_threat' | 'custom';
export type SignalAuthContext = 'none' | 'basic' | 'api_key' | 'oauth2' | 'jwt' | 'mtls' | '2fa';

/** One policy outcome a record proves (or, with `derived`, suggests by its status alone). */
export interface AccessSignal {
  kind: SignalKind;
  name: string;
  outcome: 'pass' | 'fail';
  reason?: string;
  authContext?: SignalAuthContext;
  /** `status` when the signal rests on the HTTP status alone: a heuristic, labelled as such. */
  derived?: 'status';
}

/**
 * One HTTP request as any access-log format tells it, before it becomes contract events. Each
 * adapter fills what its format carries; `accessRecordEvents` applies the contract's rules once.
 */
export interface AccessRecord {
  /** RFC 3339. */
  time?: string;
  requestId?: string;
  traceId?: string;
  /** As logged; a method outside the contract skips the record. */
  method?: string;
  /** Path, possibly with a query or as an absolute URL; the query is dropped. */
  uri?: string;
  /** A route template (`/accounts/{id}`) or a route name (`orders-v1`). */
  route?: string;
  status?: number;
  latencyMs?: number;
  bytesIn?: number;
  bytesOut?: number;
  clientIp?: string;
  userAgent?: string;
  userId?: string;
  consumerId?: string;
  /** `resource.api`: the API the request addressed (authority, `server.address`). */
  api?: string;
  upstream?: string;
  instance?: string;
  groupKeys: GroupKeys;
  signals: readonly AccessSignal[];
  labels?: Record<string, string>;
  /**
   * What identifies the record when it has no request id, hashed into the event ids as JSON.
   * Kept as parts so the text is only built for records that need it.
   */
  fallback: readonly unknown[];
  /** The record's own field names, for messages that say what was looked up. */
  lookedUp: { path: string; status: string; time: string };
}

// The contract's own character rules (schemas/envelope.ts), so an optional field it would refuse
// is left out here rather than costing the whole record a dead letter downstream.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`);
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`);

/** An optional identifier the contract would refuse (too long, control characters) is left out, not fatal. */
function identifier(value: string | undefined): string | undefined {
  return value !== undefined && value !== '' && value.length <= 256 && !CONTROL.test(value) ? value : undefined;
}

function userAgent(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || CONTROL_BUT_TAB.test(value)) return undefined;
  return value.length > 1024 ? value.slice(0, 1024) : value;
}

function count(value: number | undefined): number {
  return value !== undefined && Number.isInteger(value) && value >= 0 ? value : 0;
}

/** The route the contract takes: a template as is, a route name under `/`, else the path itself. */
function contractRoute(route: string | undefined, path: string): string {
  if (route === undefined || route === '' || CONTROL.test(route)) return path;
  return route.startsWith('/') ? route : `/${route}`;
}

const quoted = (value: string | undefined): string => (value === undefined ? '(none)' : JSON.stringify(value));

/**
 * Turns one record into its invocation event and policy events, or one reject or skip, appended
 * to `out`. `index` is the record's position in the message, for the reject's message.
 */
export function accessRecordEvents(format: string, record: AccessRecord, index: number, settings: AdapterSettings, out: AdapterResult): void {
  const method = contractMethod(record.method);
  if (method === undefined) {
    out.skipped.push({ reason: 'method_unsupported', record: index });
    return;
  }
  const target = record.uri === undefined ? undefined : splitUri(record.uri);
  if (target === undefined) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no request path starting with "/" (looked up ${record.lookedUp.path}: ${quoted(record.uri)})` });
    return;
  }
  const status = record.status;
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no HTTP status 100-599 (looked up ${record.lookedUp.status})` });
    return;
  }
  if (target.path.length > 2048 || CONTROL.test(target.path)) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: the path is over 2048 characters or holds a control character, which the contract refuses` });
    return;
  }
  if (record.time === undefined) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no time (looked up ${record.lookedUp.time})` });
    return;
  }
  const keys = record.groupKeys;
  const group = settings.groups.resolve(keys);
  if (group === undefined) {
    const tags = keys.tags !== undefined && keys.tags.length > 0 ? `, tags ${keys.tags.map((tag) => JSON.stringify(tag)).join(' ')}` : ', tags (none)';
    out.rejected.push({
      reason: 'adapter_unmapped',
      record: index,
      message: `record ${index}: no group for route ${quoted(keys.route)}, service ${quoted(keys.service)}, api ${quoted(keys.api)}${tags} and no default group`,
    });
    return;
  }

  const requestId = identifier(record.requestId);
  const fallback = requestId === undefined ? JSON.stringify(record.fallback) : '';
  const id = (suffix: EventSuffix): string => eventId(format, requestId, fallback, suffix);
  const instance = identifier(record.instance) ?? settings.instance;
  const envelope = {
    schemaVersion: 1 as const,
    time: record.time,
    source: {
      service: settings.service,
      kind: settings.kind,
      ...(instance !== undefined ? { instance } : {}),
      ...(settings.environment !== undefined ? { environment: settings.environment } : {}),
    },
    correlation: compact2('requestId', requestId, 'traceId', identifier(record.traceId)),
    actor: compact2('userId', identifier(record.userId), 'consumerId', identifier(record.consumerId)),
    client: compact2('ip', record.clientIp !== undefined && isIP(record.clientIp) !== 0 ? record.clientIp : undefined, 'userAgent', userAgent(record.userAgent)),
  };
  const labels = { [ADAPTER_LABELS.format]: format, ...record.labels };
  const resource = { api: identifier(record.api) ?? identifier(keys.service) ?? group, method, path: target.path };
  const upstream = identifier(record.upstream);
  const latency = record.latencyMs !== undefined && Number.isFinite(record.latencyMs) ? Math.min(Math.max(record.latencyMs, 0), 3_600_000) : 0;

  out.events.push({
    id: id('inv'),
    ...envelope,
    labels,
    family: 'invocation',
    invocation: {
      resource,
      route: contractRoute(record.route, target.path),
      status,
      latencyMs: latency,
      bytesIn: count(record.bytesIn),
      bytesOut: count(record.bytesOut),
      ...(upstream !== undefined ? { upstreamService: upstream } : {}),
      group,
    },
  });
  const seen = new Set<SignalKind>();
  for (const signal of record.signals) {
    // One policy event per kind and request: the id names the kind, so a second would collide.
    if (seen.has(signal.kind)) continue;
    seen.add(signal.kind);
    const event: VigilEventInput = {
      id: id(signal.kind),
      ...envelope,
      labels: signal.derived !== undefined ? { ...labels, [ADAPTER_LABELS.derived]: signal.derived } : labels,
      family: 'policy',
      policy: {
        kind: signal.kind,
        name: signal.name.slice(0, 256),
        outcome: signal.outcome,
        ...(signal.reason !== undefined && !CONTROL.test(signal.reason) ? { reason: signal.reason.slice(0, 1024) } : {}),
        ...(signal.authContext !== undefined ? { authContext: signal.authContext } : {}),
        group,
        resource,
      },
    };
    out.events.push(event);
  }
}

/** An object of the two fields that are set; built by hand, as this runs for every record. */
function compact2<A extends string, B extends string>(a: A, aValue: string | undefined, b: B, bValue: string | undefined): Partial<Record<A | B, string>> {
  const result: Partial<Record<A | B, string>> = {};
  if (aValue !== undefined) result[a] = aValue;
  if (bValue !== undefined) result[b] = bValue;
  return result;
}

/** The policy event a status alone suggests (401, 403, 429), marked as a heuristic. */
export function statusSignal(status: number | undefined, reason?: string): AccessSignal | undefined {
  const kind = status === 401 ? 'authn' : status === 403 ? 'authz' : status === 429 ? 'rate_limit' : undefined;
  if (kind === undefined || status === undefined) return undefined;
  return { kind, name: `http-${status}`, outcome: 'fail', derived: 'status', ...(reason !== undefined ? { reason } : {}) };
}
