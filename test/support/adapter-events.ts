/** Shared checks and builders of the adapter unit tests: what every adapter's events must satisfy. */
import { eventSchema, describeIssues, type VigilEventInput } from '../../schemas';

/** Every event an adapter makes must be one the pipeline accepts. */
export function expectContract(events: readonly VigilEventInput[]): void {
  for (const event of events) {
    const parsed = eventSchema.safeParse(event);
    expect(parsed.success ? [] : describeIssues(parsed.error)).toEqual([]);
  }
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
    id: `${envelope.adapter}:${envelope.requestId}:${suffix}`,
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
