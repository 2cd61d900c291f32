import { spawnSync } from 'node:child_process';
import { CompressionCodecs, CompressionTypes, KafkaJSNotImplemented } from 'kafkajs';
import type { IngestPipeline } from '../../ingest';
import { READABLE_CODECS, createLogger, registerCodecs, type Codec } from '../../platform';
import { countEvents, isolatedConfig, openStack, vigilOn, waitFor, withVigil, type Stack } from '../support/harness';

const PER_CODEC = 120;

// kafkajs's typings give KafkaJSNotImplemented no constructor argument; at run time it takes the message.
const NotImplemented = KafkaJSNotImplemented as unknown as new (message: string) => Error;

const validPolicy = (id: string): Record<string, unknown> => ({
  id,
  schemaVersion: 1,
  family: 'policy',
  time: new Date().toISOString(),
  source: { service: 'kcat-gateway', kind: 'gateway' },
  actor: { userId: `u-${id}`, consumerId: 'partner-kcat' },
  client: { ip: '81.2.69.142' },
  policy: { kind: 'authn', name: 'basic-auth', outcome: 'fail', reason: 'invalid_credentials', group: 'legacy', resource: { api: 'legacy-v1', method: 'POST', path: '/v1/login' } },
});

/**
 * Produces `count` valid policy events with kcat (librdkafka, a client Vigil didn't write), the
 * batches compressed with `codec`. Keys vary, so both partitions get batches.
 */
function produceWithKcat(stack: Stack, codec: Codec, prefix: string, count: number): string[] {
  const ids = Array.from({ length: count }, (_, n) => `${prefix}-${n}`);
  const lines = ids.map((id) => `${id}|${JSON.stringify(validPolicy(id))}`).join('\n');
  const result = spawnSync('kcat', ['-P', '-b', stack.config.kafka.brokers[0] ?? '', '-t', stack.config.topics.policy, '-K', '|', '-z', codec], {
    input: `${lines}\n`,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`kcat -z ${codec} failed (${result.status}): ${result.stderr}`);
  return ids;
}

describe('record batches compressed by another producer', () => {
  const run = withVigil();

  it.each(READABLE_CODECS.map((codec) => [codec]))('indexes every event of %s batches produced by kcat', async (codec) => {
    const ids = produceWithKcat(run.stack, codec, `evt-${codec}`, PER_CODEC);
    const query = { terms: { 'event.id': ids } };
    await waitFor(`${PER_CODEC} events from ${codec} batches`, async () => (await countEvents(run.stack, query)) >= PER_CODEC);
    expect(await countEvents(run.stack, query)).toBe(PER_CODEC);
    expect((run.vigil.pipeline as IngestPipeline).stats().deadLettered).toBe(0);
  });
});

describe('a batch that no codec can decode', () => {
  it('stops the consumer with one error line naming the codec and the partitions', async () => {
    const stack = openStack(isolatedConfig({ VIGIL_TOPIC_PARTITIONS: '1' }));
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    // kafkajs's own placeholder, as if LZ4 had never been registered.
    CompressionCodecs[CompressionTypes.LZ4] = () => {
      throw new NotImplemented('LZ4 compression not implemented');
    };
    const vigil = vigilOn(stack, { logger });
    try {
      await vigil.start();
      produceWithKcat(stack, 'lz4', 'evt-undecodable', 20);
      const stopped = (): Record<string, unknown>[] => lines.filter((line) => String(line.msg).startsWith('consumer stopped'));
      await waitFor('the line saying why the consumer stopped', () => stopped().length > 0);
      const [line] = stopped();
      expect(line?.codec).toBe('lz4');
      expect(line?.group).toBe(stack.config.consumerGroup);
      expect(line?.partitions).toContain(`${stack.config.topics.policy}/0`);
      expect(String(line?.msg)).toContain(`lz4 record batch on one of`);
      expect(String(line?.msg)).toContain(`${stack.config.topics.policy}/0`);
      expect(await countEvents(stack)).toBe(0);
    } finally {
      registerCodecs();
      await vigil.stop();
      await stack.cleanup();
    }
  });
});
