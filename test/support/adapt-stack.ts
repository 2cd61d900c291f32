/**
 * `vigil adapt` on the real stack, shared by the gateway integration tests: a raw topic, the adapt
 * consumer built as the CLI builds it, the real pipeline (withVigil), and the checks every
 * adapter must pass (documents indexed, policy outcomes, rules fired from gateway records alone,
 * no new document on replay).
 */
import type { Message } from 'kafkajs';
import { createAdapt, type Adapt } from '../../app';
import { createProducer, sendBatches } from '../../platform';
import { indexNames, type Detection } from '../../schemas';
import { countEvents, testLogger, waitFor, withVigil, type Stack } from './harness';

/** One key, one request at a time under the broker's limit: the adapter reads the records in the order the gateway wrote them. */
export async function produceInOrder(producer: ReturnType<typeof createProducer>, topic: string, messages: Message[]): Promise<void> {
  for (const batch of sendBatches(messages)) await producer.send({ topic, messages: batch, acks: -1 });
}

/** Produces `messages` to `topic` with a producer of its own. */
export async function produceAll(stack: Stack, topic: string, messages: Message[]): Promise<void> {
  const producer = createProducer(stack.kafka);
  await producer.connect();
  try {
    await produceInOrder(producer, topic, messages);
  } finally {
    await producer.disconnect();
  }
}

/** Deletes the raw topics a test created (never anyone else's). */
export async function deleteTopics(stack: Stack, topics: string[]): Promise<void> {
  const admin = stack.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect();
}

/** Whether a detection of `rule` fired with `key[field] === value`. */
export function fired(detections: readonly Detection[], rule: string, field: string, value: string): boolean {
  return detections.some((detection) => detection.ruleId === rule && detection.key[field] === value);
}

/** One policy document as the tests compare it: Vigil's policy fields and ECS's event.outcome. */
export interface PolicyOutcome {
  kind: string;
  name: string;
  outcome: 'pass' | 'fail';
  reason?: string;
  eventOutcome: string;
}

/** The policy documents indexed for one client IP, sorted, as {@link PolicyOutcome}s. */
export async function policyOutcomesOf(stack: Stack, clientIp: string): Promise<PolicyOutcome[]> {
  await stack.elasticsearch.indices.refresh({ index: indexNames(stack.config.indices.prefix).eventPattern, allow_no_indices: true, ignore_unavailable: true });
  const found = await stack.elasticsearch.search<{ vigil?: { policy?: { kind: string; name: string; outcome: 'pass' | 'fail' } }; event?: { outcome?: string; reason?: string } }>({
    index: indexNames(stack.config.indices.prefix).eventPattern,
    size: 100,
    query: { bool: { filter: [{ term: { 'source.ip': clientIp } }, { term: { 'event.dataset': 'vigil.policy' } }] } },
  });
  return found.hits.hits
    .map((hit): PolicyOutcome => {
      const policy = hit._source?.vigil?.policy;
      // The policy's reason is ECS's event.reason (its copy in vigil.policy is no longer written).
      const reason = hit._source?.event?.reason;
      return {
        kind: policy?.kind ?? '',
        name: policy?.name ?? '',
        outcome: policy?.outcome ?? 'fail',
        ...(reason !== undefined ? { reason } : {}),
        eventOutcome: hit._source?.event?.outcome ?? '',
      };
    })
    .sort((a, b) => `${a.kind}/${a.name}/${a.reason ?? ''}`.localeCompare(`${b.kind}/${b.name}/${b.reason ?? ''}`));
}

/** One gateway format's records and what the pipeline must make of them. */
export interface AdaptScenario {
  /** The `--format` of vigil adapt. */
  format: string;
  /** VIGIL_ADAPT_* settings (service, environment, groups). */
  env: Record<string, string>;
  /** The raw messages, as the gateway (or its shipper) writes them, in time order. */
  messages: Message[];
  /** The contract events the messages prove. */
  events: number;
  /** The derived policy events `VIGIL_ADAPT_DERIVED_POLICIES` leaves out, by kind. @defaultValue none */
  derivedDropped?: Record<string, number>;
  /** The client IP of the records whose policy outcomes are checked, and those outcomes. */
  outcomesIp: string;
  outcomes: PolicyOutcome[];
  /** Rules that must fire from these records alone: rule id, key field, key value. */
  rules: Array<[rule: string, field: string, value: string]>;
}

/**
 * The four checks of an adapter on the real stack, as one describe block with its own isolated
 * stack: documents, policy outcomes, rules fired, replay.
 */
export function describeAdaptOnStack(title: string, scenario: () => AdaptScenario): void {
  describe(title, () => {
    const detections: Detection[] = [];
    let spec: AdaptScenario;
    const envOf = (): Record<string, string> => scenario().env;
    const running = withVigil(envOf(), { onDetections: (batch) => detections.push(...batch) });
    let adapt: Adapt;
    let topic: string;

    beforeAll(async () => {
      spec = scenario();
      topic = `${running.stack.config.indices.prefix}.raw-${spec.format}`;
      adapt = createAdapt(running.stack.config, { format: spec.format, topic, kafka: running.stack.kafka, logger: testLogger });
      await adapt.start();
      await produceAll(running.stack, topic, spec.messages);
    });

    afterAll(async () => {
      await adapt?.stop();
      if (topic !== undefined) await deleteTopics(running.stack, [topic]);
    });

    it('indexes every event the records prove', async () => {
      await waitFor('the adapted events to be indexed', async () => (await countEvents(running.stack)) >= spec.events, 60_000);
      expect(await countEvents(running.stack)).toBe(spec.events);
      expect(adapt.stats()).toMatchObject({ messages: spec.messages.length, events: spec.events, deadLettered: 0, derivedDroppedByKind: spec.derivedDropped ?? {} });
    });

    it('gives each policy event its outcome, name and reason, and event.outcome', async () => {
      expect(await policyOutcomesOf(running.stack, spec.outcomesIp)).toEqual([...spec.outcomes].sort((a, b) => `${a.kind}/${a.name}/${a.reason ?? ''}`.localeCompare(`${b.kind}/${b.name}/${b.reason ?? ''}`)));
    });

    it('fires the rules the format carries from its records alone', async () => {
      const all = (): boolean => spec.rules.every(([rule, field, value]) => fired(detections, rule, field, value));
      // On a timeout, the assertion below says which fired and which did not.
      await waitFor('the detections', all, 60_000).catch(() => undefined);
      expect(Object.fromEntries(spec.rules.map(([rule, field, value]) => [rule, fired(detections, rule, field, value)]))).toEqual(Object.fromEntries(spec.rules.map(([rule]) => [rule, true])));
    });

    it('adds no document when the same records are produced again', async () => {
      const before = await countEvents(running.stack);
      const duplicatesBefore = running.vigil.stats().ingest?.duplicates ?? 0;
      await produceAll(running.stack, topic, spec.messages);
      await waitFor('the replayed records to reach the pipeline', () => (running.vigil.stats().ingest?.duplicates ?? 0) - duplicatesBefore >= spec.events, 60_000);
      expect(adapt.stats().messages).toBe(2 * spec.messages.length);
      expect(await countEvents(running.stack)).toBe(before);
      expect((running.vigil.stats().ingest?.duplicates ?? 0) - duplicatesBefore).toBe(spec.events);
    });
  });
}
