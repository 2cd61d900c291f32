import { EventEmitter } from 'node:events';
import { CompressionCodecs, CompressionTypes, KafkaJSNonRetriableError, type Consumer } from 'kafkajs';
import { CompressionError, READABLE_CODECS, codecOfFailure, createLogger, registerCodecs, watchDecodeFailures, type Codec } from '../../platform';

interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const TYPE_OF = { gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD } as const;
const codecOf = (codec: Codec): KafkaCodec => (CompressionCodecs[TYPE_OF[codec]] as () => KafkaCodec)();

// What kafkajs's retrier rejects with when a fetch fails for good (its typings omit the cause).
const NonRetriable = KafkaJSNonRetriableError as unknown as new (error: Error, metadata: { cause: Error }) => Error;
const crashOf = (error: Error): Error => new NonRetriable(error, { cause: error });

const batch = Buffer.from(JSON.stringify(Array.from({ length: 200 }, (_, n) => ({ id: `evt-${n}`, family: 'policy', outcome: 'fail' }))));

describe('registerCodecs', () => {
  beforeAll(() => registerCodecs());

  it.each(['gzip', 'snappy', 'lz4'] as const)('round-trips a batch through %s, smaller than it was', async (codec) => {
    const compressed = await codecOf(codec).compress({ buffer: batch });
    expect(compressed.length).toBeLessThan(batch.length);
    expect((await codecOf(codec).decompress(compressed)).equals(batch)).toBe(true);
  });

  it('reads ZSTD but refuses to write it, saying so', async () => {
    await expect(codecOf('zstd').compress({ buffer: batch })).rejects.toThrow(/zstd: Vigil reads ZSTD batches but does not write them/);
    // A zstd frame written by the reference implementation (`zstd -19 < 'vigil vigil vigil vigil'`).
    const frame = Buffer.from('KLUv/QRoZQAAMHZpZ2lsIAEAmUsRWYscAQ==', 'base64');
    expect((await codecOf('zstd').decompress(frame)).toString()).toBe('vigil vigil vigil vigil');
  });

  it.each(READABLE_CODECS.map((codec) => [codec]))('names %s when a batch is corrupt', async (codec) => {
    const failure = await codecOf(codec)
      .decompress(Buffer.from('definitely not a compressed record batch'))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CompressionError);
    expect((failure as CompressionError).codec).toBe(codec);
    expect((failure as CompressionError).retriable).toBe(false);
    expect((failure as CompressionError).message).toMatch(new RegExp(`^${codec}: cannot decompress a record batch of 40 bytes`));
  });

  it('is idempotent, and puts back a codec something replaced', () => {
    const before = READABLE_CODECS.map((codec) => CompressionCodecs[TYPE_OF[codec]]);
    registerCodecs();
    expect(READABLE_CODECS.map((codec) => CompressionCodecs[TYPE_OF[codec]])).toEqual(before);
    const replaced = (): never => {
      throw new Error('LZ4 compression not implemented');
    };
    CompressionCodecs[CompressionTypes.LZ4] = replaced;
    registerCodecs();
    expect(CompressionCodecs[CompressionTypes.LZ4]).toBe(before[2]);
  });
});

describe('codecOfFailure', () => {
  it('finds the codec of a CompressionError however deep kafkajs wrapped it', () => {
    expect(codecOfFailure(crashOf(new CompressionError('snappy', 'boom')))).toBe('snappy');
  });

  it("reads the codec from kafkajs's own not-implemented error, which its runner bails with as it is", () => {
    const error = Object.assign(new Error('ZSTD compression not implemented'), { name: 'KafkaJSNotImplemented' });
    expect(codecOfFailure(error)).toBe('zstd');
  });

  it('leaves every other crash alone', () => {
    expect(codecOfFailure(new Error('The group is rebalancing'))).toBeUndefined();
    expect(codecOfFailure('lz4')).toBeUndefined();
  });
});

describe('watchDecodeFailures', () => {
  it('logs one line per decode crash with the codec, the group and the assigned partitions', () => {
    const emitter = new EventEmitter();
    const consumer = { events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' }, on: emitter.on.bind(emitter) } as unknown as Consumer;
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    watchDecodeFailures(consumer, logger, 'vigil-ingest');
    emitter.emit('consumer.group_join', { payload: { memberAssignment: { 'vigil.events.policy': [0, 2] } } });
    emitter.emit('consumer.crash', { payload: { error: new Error('The group is rebalancing'), groupId: 'vigil-ingest', restart: true } });
    emitter.emit('consumer.crash', { payload: { error: crashOf(new CompressionError('lz4', 'cannot decompress')), groupId: 'vigil-ingest', restart: false } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ codec: 'lz4', group: 'vigil-ingest', partitions: ['vigil.events.policy/0', 'vigil.events.policy/2'], restart: false });
    expect(lines[0]?.msg).toBe('consumer stopped: cannot decode a lz4 record batch on one of vigil.events.policy/0, vigil.events.policy/2: lz4: cannot decompress');
  });
});
