import type { PolicyKind, VigilEventInput } from '../../schemas';

/**
 * The contract between a gateway's log format and Vigil's events. An adapter is a pure
 * function from the bytes of one raw Kafka message (which may hold many records: a Kong or
 * APISIX batch array, an OTLP export request) to contract events. It does no I/O: the adapt
 * consumer (`vigil adapt`) reads the raw topic, calls it, produces the events to the family
 * topics and dead-letters what it refuses, so the pipeline's validation, dedup and dead
 * letters stay the one path every event takes.
 */

/** Why a raw record was refused. Stable codes, added to the dead-letter reasons. */
export const ADAPTER_REJECT_REASONS = [
  /** The message is not the format at all: not JSON, not protobuf, wrong shape. */
  'adapter_unparseable',
  /** The record parsed but cannot become a contract event: no group maps it, no method, no path. */
  'adapter_unmapped',
] as const;
export type AdapterRejectReason = (typeof ADAPTER_REJECT_REASONS)[number];

/**
 * What no gateway log carries, supplied by configuration and validated at start: who observed
 * the events, and which policy group each service or route belongs to.
 */
export interface AdapterSettings {
  /** `source.service` of every event, e.g. `edge-kong-eu`. */
  service: string;
  /** `source.kind`; a gateway's logs are `gateway`, an instrumented service's spans `service`. */
  kind: 'gateway' | 'service';
  environment?: string;
  /** Used when a record names no instance of its own. */
  instance?: string;
  /** Resolves a record's policy group; `undefined` means unmapped (the record is refused). */
  groups: GroupMap;
  /**
   * Kong: take the `X-Authenticated-Userid` request header as the user (when a credential
   * authenticated the request). Only the oauth2 plugin sets it and clears a client's copy; on a
   * route authenticated otherwise it is whatever the client sent. @defaultValue false
   */
  kongUserHeader?: boolean;
  /**
   * APISIX: the consumers that key-auth, jwt-auth, basic-auth or hmac-auth attach as their
   * `anonymous_consumer` when a credential is missing or wrong. APISIX logs that consumer like any
   * other (`consumer.username`), so only its name tells that nobody authenticated; a request
   * with one of these consumers gets no authentication pass. @defaultValue `['anonymous']`
   */
  apisixAnonymousConsumers?: readonly string[];
  /**
   * The policy kinds whose derived events (`derived: status`, resting on the HTTP status alone)
   * are built; a derived event of any other kind is dropped and counted in
   * {@link AdapterResult.droppedDerived}. Proven policy events and invocations are built whatever
   * it says. A service behind the gateway that reports its own outcomes through the SDK would
   * otherwise be heard twice. @defaultValue every kind
   */
  derivedPolicies?: readonly PolicyKind[];
}

/** Where a group can come from, most specific first; see `resolveGroup` in `groups.ts`. */
export interface GroupKeys {
  route?: string;
  service?: string;
  api?: string;
  tags?: readonly string[];
}

export interface GroupMap {
  resolve(keys: GroupKeys): string | undefined;
}

/** One record the adapter refused, with enough to find and fix it. */
export interface AdapterReject {
  reason: AdapterRejectReason;
  /** Human-readable, names what is wrong: `record 3: no group for route "orders" or service "shop"`. */
  message: string;
  /** Index of the record within the message (0 for a single-record message). */
  record: number;
}

/** One record skipped on purpose (not an error): a health check, a method outside the contract. */
export interface AdapterSkip {
  /** Stable code, counted in metrics: e.g. `method_unsupported`, `not_http`. */
  reason: string;
  record: number;
}

/** One derived policy event not built because {@link AdapterSettings.derivedPolicies} leaves its kind out. */
export interface DroppedDerived {
  kind: PolicyKind;
  record: number;
}

export interface AdapterResult {
  /** Contract events in producer shape; the adapt consumer validates them like any producer's. */
  events: VigilEventInput[];
  rejected: AdapterReject[];
  skipped: AdapterSkip[];
  /** Derived policy events left out on purpose (`VIGIL_ADAPT_DERIVED_POLICIES`), counted in metrics. */
  droppedDerived: DroppedDerived[];
}

export interface GatewayAdapter {
  /** The `--format` name, e.g. `kong`, `apisix`, `envoy`, `otlp`, `wso2`, `tyk`. */
  format: string;
  /** What it reads, one line, for `vigil adapt --help` and the docs. */
  description: string;
  translate(value: Uint8Array, settings: AdapterSettings): AdapterResult;
}

/**
 * Labels every adapter sets so an analyst can tell derived facts from proven ones:
 * `adapter` = the format; `derived` = `status` when a policy event rests on the HTTP status
 * alone (a heuristic), absent when the record proved it (a flag, a plugin's fault category).
 */
export const ADAPTER_LABELS = { format: 'adapter', derived: 'derived' } as const;
