/**
 * What reading an LZ4 record batch costs the pipeline, by the size of the frame.
 *
 * A producer that lingers a few milliseconds (the SDK's librdkafka client: 5 ms, LZ4 by default)
 * writes frames of a few events each when traffic is steady, and the ingest consumer decompresses
 * every one of them. This bench decompresses frames of 1 to 600 gateway events through the codec
 * Vigil registers with kafkajs, and, as the same run's baseline, through lz4-napi's thread-pool
 * call alone (what the codec did for every frame before frames up to `LZ4_SYNC_MAX_BYTES` were
 * decoded on the calling thread). Per frame size it prints the process's CPU per frame (every
 * thread: the pool's work counts) and the wall time, each as the ratio codec / baseline, medians
 * over the rounds, cases alternating within each round.
 *
 *   npx tsx bench/lz4-decode.bench.ts [rounds=5]
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { compressFrameSync, decompressFrame } from 'lz4-napi';
import { LZ4_SYNC_MAX_BYTES, registerCodecs } from '../platform';
import { positiveInteger } from './arguments';
import { gatewayEvents } from './gateway-events';

const ROUNDS = positiveInteger(process.argv[2], 5, 'rounds');
const SIZES = [1, 3, 15, 50, 150, 600] as const;
/** Decompressions per case and round: about 2 MB of events each, at least 500 frames. */
const framesFor = (events: number): number => Math.max(500, Math.round(3_000 / events));

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/** Gateway events as JSON (an id and a time added, as the SDK adds them), concatenated as in a record batch. */
function frameOf(count: number): { raw: Buffer; frame: Buffer } {
  const at = Date.parse('2026-12-05T12:00:00Z');
  const raw = Buffer.from(
    gatewayEvents(count, { varied: true })
      .map(({ family, input }, n) => JSON.stringify({ id: randomUUID(), time: new Date(at + n * 37).toISOString(), family, schemaVersion: 1, ...input }))
      .join(''),
  );
  return { raw, frame: compressFrameSync(raw) };
}

async function timed(frames: number, decode: () => Promise<Buffer>): Promise<{ cpu: number; wall: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let n = 0; n < frames; n++) await decode();
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / frames, wall: ((performance.now() - started) * 1000) / frames };
}

async function main(): Promise<void> {
  registerCodecs();
  const codec = (CompressionCodecs[CompressionTypes.LZ4] as () => { decompress(buffer: Buffer): Promise<Buffer> })();
  console.log(`LZ4 decode per frame: Vigil's codec / lz4-napi's thread-pool call (the baseline), same run, ${ROUNDS} rounds, medians`);
  console.log(`frames up to ${LZ4_SYNC_MAX_BYTES} bytes are decoded on the calling thread`);
  console.log('');
  console.log('events  raw B  frame B  side   baseline CPU µs  codec CPU µs  CPU ratio  wall ratio');
  for (const events of SIZES) {
    const { raw, frame } = frameOf(events);
    // Both give the very bytes produced.
    if (!(await codec.decompress(frame)).equals(raw) || !(await decompressFrame(frame)).equals(raw)) throw new Error(`a frame of ${events} events did not decode to its bytes`);
    const frames = framesFor(events);
    const baseline: { cpu: number; wall: number }[] = [];
    const vigil: { cpu: number; wall: number }[] = [];
    await timed(100, () => decompressFrame(frame));
    await timed(100, () => codec.decompress(frame));
    for (let round = 0; round < ROUNDS; round++) {
      const first = round % 2 === 0;
      if (first) baseline.push(await timed(frames, () => decompressFrame(frame)));
      vigil.push(await timed(frames, () => codec.decompress(frame)));
      if (!first) baseline.push(await timed(frames, () => decompressFrame(frame)));
    }
    const cpuRatio = median(vigil.map(({ cpu }, round) => cpu / (baseline[round]?.cpu ?? NaN)));
    const wallRatio = median(vigil.map(({ wall }, round) => wall / (baseline[round]?.wall ?? NaN)));
    const side = frame.length <= LZ4_SYNC_MAX_BYTES ? 'thread' : 'pool';
    console.log(
      `${String(events).padStart(6)}  ${String(raw.length).padStart(6)}  ${String(frame.length).padStart(7)}  ${side.padEnd(6)} ${median(baseline.map(({ cpu }) => cpu)).toFixed(1).padStart(15)}  ${median(vigil.map(({ cpu }) => cpu)).toFixed(1).padStart(12)}  ${cpuRatio.toFixed(2).padStart(9)}  ${wallRatio.toFixed(2).padStart(10)}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
