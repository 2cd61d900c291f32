import { CompressionCodecs, CompressionTypes, type Consumer } from 'kafkajs';
import SnappyCodec from 'kafkajs-snappy';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { decompress as zstdDecompress } from 'fzstd';
import { VigilError, errorMessage } from '../errors';
import type { Logger } from '../logger';

/** The record-batch compressions a Kafka producer may use, by kafkajs's name for them. */
export type Codec = 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Every codec a Vigil consumer decodes once {@link registerCodecs} ran. */
export const READABLE_CODECS: readonly Codec[] = ['gzip', 'snappy', 'lz4', 'zstd'];

/** A record batch that its codec can't decompress (corrupt), or a codec Vigil can't write. */
export class CompressionError extends VigilError {
  readonly codec: Codec;

  constructor(codec: Codec, message: string, cause?: unknown) {
    // Not retriable: the same bytes fail the same way on every fetch.
    super(`${codec}: ${message}`, { code: 'compression_failed', retriable: false, cause });
    this.codec = codec;
  }
}

/** The shape kafkajs expects of a codec (its typings say `any`). */
interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

type CodecType = keyof typeof CompressionCodecs;

const TYPE_OF: Record<Codec, CodecType> = {
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

// Pure JS, with the xerial framing the Java client writes as well as librdkafka's raw blocks.
const snappy: KafkaCodec = SnappyCodec();

// LZ4 frame format (record batches of message format v2). lz4-napi is prebuilt per platform, no
// compile at install. lz4js was rejected: it reads kcat's frames, but the broker refuses the
// frames it writes. Every frame goes through libuv's thread pool: decoding small frames on the
// event loop instead cost a tenth of the CPU and sped up the ingest's fetches, but moved the wait
// onto the alerter and notifier sharing that loop (docs/performance.md, 5 December 2026).
const lz4: KafkaCodec = {
  compress: (encoder) => compressFrame(encoder.buffer),
  decompress: (buffer) => decompressFrame(buffer),
};

// fzstd is a pure-JS decoder; Node 20 has no zstd in zlib, and the native bindings on the registry
// either fail to compile on Node 20 (@kafkajs/zstd's cppzst) or download a binary at install.
// Vigil's own producers never write ZSTD, so only reading is needed.
const zstd: KafkaCodec = {
  compress: () => Promise.reject(new CompressionError('zstd', 'Vigil reads ZSTD batches but does not write them; use gzip, snappy or lz4')),
  decompress: (buffer) => Promise.resolve(Buffer.from(zstdDecompress(buffer))),
};

/** Names the codec in every failure, so a crash says which compression the batch had. */
function named(codec: Codec, inner: KafkaCodec): KafkaCodec {
  return {
    async compress(encoder) {
      try {
        return await inner.compress(encoder);
      } catch (error) {
        throw error instanceof CompressionError ? error : new CompressionError(codec, `cannot compress a record batch: ${errorMessage(error)}`, error);
      }
    },
    async decompress(buffer) {
      try {
        return await inner.decompress(buffer);
      } catch (error) {
        throw new CompressionError(codec, `cannot decompress a record batch of ${buffer.length} bytes: ${errorMessage(error)}`, error);
      }
    },
  };
}

let factories: Record<Codec, () => KafkaCodec> | undefined;

/**
 * Teaches kafkajs (process-wide: its codec table is a module singleton) to read and write Snappy,
 * LZ4 and ZSTD batches besides gzip, and makes every codec failure a {@link CompressionError}
 * naming the codec. Idempotent, and puts back a codec something else replaced; {@link createKafka}
 * calls it, so every Vigil client has it.
 */
export function registerCodecs(): void {
  if (!factories) {
    // Wrap kafkajs's own gzip once, before anything of ours is in its slot.
    const gzip = named('gzip', (CompressionCodecs[CompressionTypes.GZIP] as () => KafkaCodec)());
    const codecs: Record<Codec, KafkaCodec> = { gzip, snappy: named('snappy', snappy), lz4: named('lz4', lz4), zstd: named('zstd', zstd) };
    // kafkajs looks a codec up through a factory on every batch: hand back the same object each time.
    factories = { gzip: () => codecs.gzip, snappy: () => codecs.snappy, lz4: () => codecs.lz4, zstd: () => codecs.zstd };
  }
  for (const codec of READABLE_CODECS) CompressionCodecs[TYPE_OF[codec]] = factories[codec];
}

const CODEC_IN_MESSAGE = /\b(gzip|snappy|lz4|zstd)\b/i;

/** The codec a decode failure is about, from a {@link CompressionError} or kafkajs's own error. */
export function codecOfFailure(error: unknown): Codec | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current instanceof CompressionError) return current.codec;
    if (current.name === 'KafkaJSNotImplemented') {
      const match = CODEC_IN_MESSAGE.exec(current.message)?.[1];
      if (match) return match.toLowerCase() as Codec;
    }
  }
  return undefined;
}

/**
 * Makes a consumer that stops on a batch it can't decompress say so in one line: the codec, the
 * group, and the topic-partitions it was fetching. kafkajs fails the whole fetch (one request
 * covers every partition a broker leads), so the exact partition isn't known; the assignment is
 * the short list to look at. Other crashes are left to whoever handles crashes.
 */
export function watchDecodeFailures(consumer: Consumer, logger: Logger, groupId: string): void {
  let assignment: Record<string, number[]> = {};
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    assignment = event.payload.memberAssignment;
  });
  consumer.on(consumer.events.CRASH, (event) => {
    const codec = codecOfFailure(event.payload.error);
    if (!codec) return;
    const partitions = Object.entries(assignment).flatMap(([topic, numbers]) => numbers.map((partition) => `${topic}/${partition}`));
    logger.error(
      { err: event.payload.error, codec, group: groupId, partitions, restart: event.payload.restart },
      `consumer stopped: cannot decode a ${codec} record batch on one of ${partitions.join(', ') || 'its partitions'}: ${errorMessage(event.payload.error)}`,
    );
  });
}
