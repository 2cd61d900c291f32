/** Shared checks and builders of the adapter unit tests: what every adapter's events must satisfy. */
import { eventSchema, describeIssues, type VigilEventInput } from '../../schemas';

/** Every event an adapter makes must be one the pipeline accepts. */
export function expectContract(events: readonly VigilEventInput[]): void {
  for (const event of events) {
    const parsed = eventSchema.safeParse(event);
    expect(parsed.success ? [] : describeIssues(parsed.error)).toEqual([]);
  }
}

const WITH_RECORD_DIGEST = /^([^:]+):([^:]+):[0-9a-f]{12}:([a-z_]+)$/;

/**
 * An adapter event id with a request id, `<format>:<request>:<digest>:<suffix>`, without its
 * record digest: `<format>:<request>:<suffix>`, for a test that checks which request and kind an
 * id names. Throws when the id carries no digest, so a test reading ids through it still fails
 * if the digest goes missing.
 */
export function withoutRecordDigest(id: string): string {
  const match = WITH_RECORD_DIGEST.exec(id);
  if (match === null) throw new Error(`${id} is not <format>:<request>:<12 hex digits>:<suffix>`);
  return `${match[1]}:${match[2]}:${match[3]}`;
}

const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Matches the id of the `suffix` event of the record with this request id, whatever its record digest. */
export function requestEventId(format: string, requestId: string, suffix: string): unknown {
  return expect.stringMatching(new RegExp(`^${escaped(format)}:${escaped(requestId)}:[0-9a-f]{12}:${escaped(suffix)}$`));
}

/** What the events of one translated request share: id prefix, time, source, client, resource and group. */
export interface RequestEnvelope {
  /** The adapter's name: the id prefix and the default `adapter` label. */
  adapter: string;
  requestId: string;
  time: string;
  source: VigilEventInput['source'];
  client: VigilEventInput['client'];
  resource: { api: string; method: string; path: string };
  group: string;
}

/** Builders of the invocation and policy events one request becomes, differing only in what a case changes. */
export interface RequestEvents {
  invocation: (invocation: Record<string, unknown>, labels?: Record<string, string>, actor?: Record<string, string>) => VigilEventInput;
  policy: (kind: string, policy: Record<string, string>, labels?: Record<string, string>, actor?: Record<string, string>) => VigilEventInput;
}

/** The expected events of one request, built from what they share (see {@link RequestEnvelope}). */
export function requestEvents(envelope: RequestEnvelope): RequestEvents {
  const common = (suffix: string, labels: Record<string, string> | undefined, actor: Record<string, string>) => ({
    id: requestEventId(envelope.adapter, envelope.requestId, suffix) as string,
    schemaVersion: 1 as const,
    time: envelope.time,
    source: envelope.source,
    correlation: { requestId: envelope.requestId },
    actor,
    client: envelope.client,
    labels: labels ?? { adapter: envelope.adapter },
  });
  return {
    invocation: (invocation, labels, actor = {}) =>
      ({ ...common('inv', labels, actor), family: 'invocation', invocation: { resource: envelope.resource, ...invocation, group: envelope.group } }) as VigilEventInput,
    policy: (kind, policy, labels, actor = {}) =>
      ({ ...common(kind, labels, actor), family: 'policy', policy: { kind, ...policy, group: envelope.group, resource: envelope.resource } }) as VigilEventInput,
  };
}
