/**
 * The ingest hot path per message, without I/O: classify (size, depth scan, JSON.parse, zod or the
 * SDK text check),
 * enrich (IP scope, geoip lookup) and build the ECS document. Printed as ratios against a
 * baseline measured in the same run: JSON.parse + JSON.stringify of the same bytes, the least
 * any consumer must do. Absolute times on a shared machine move; the ratio is what to compare.
 * Times are the process's CPU time (user + system), which moves far less than wall time when
 * other work shares the cores.
 *
 * Then, side by side in the same run, each hot-path function issue 12 rewrote against its first
 * implementation (test/support/hot-path-reference.ts, or the uncached function): new / old.
 *
 *   npx tsx bench/ingest-transform.bench.ts
 */
import {
  classifyMessage,
  contentHash,
  enrich,
  findPrototypeKey,
  ipScope,
  ipScopeUncached,
  openGeoipLite,
  toEventDocument,
  type GeoLookup,
} from '../ingest';
import { eventSchema, type Family, type VigilEvent } from '../schemas';
import { fastMessage } from '../ingest/sdk/fast-check';
import { RecentIds } from '../ingest/recent-ids';
import { ReferenceRecentIds, referenceContentHash, referenceFindPrototypeKey } from '../test/support/hot-path-reference';
import { emitSimulatedTraffic } from '../scripts/simulated-traffic';
import type { Emitter } from '../ingest/sdk';
import { recordingEmitter } from './recording-emitter';
import { median } from './stats';

const MESSAGES = 20_000;
const ROUNDS = 5;

/** Records the emitted events as Kafka values: the bench measures the consumer side. */
function recordInto(into: Buffer[]): Emitter {
  let n = 0;
  return recordingEmitter((family, input) => {
    const id = `evt-bench-${(n++).toString(36).padStart(8, '0')}`;
    into.push(Buffer.from(JSON.stringify({ ...input, id, schemaVersion: 1, family, time: new Date().toISOString(), source: { service: 'bench', kind: 'gateway' } })));
    return id;
  });
}

/** CPU milliseconds (user + system) of the process while `run` ran. */
function time(run: () => void): number {
  const started = process.cpuUsage();
  run();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / 1000;
}

/** Median CPU µs per item of `old` and `now` over `items`, alternating which goes first, and new / old. */
function sideBySide<T>(items: readonly T[], old: (item: T) => unknown, now: (item: T) => unknown): { old: number; now: number; ratio: number } {
  const runOld = (): void => {
    for (const item of items) old(item);
  };
  const runNew = (): void => {
    for (const item of items) now(item);
  };
  runOld();
  runNew();
  const olds: number[] = [];
  const news: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS * 2; round++) {
    let oldMs: number;
    let newMs: number;
    if (round % 2 === 0) {
      oldMs = time(runOld);
      newMs = time(runNew);
    } else {
      newMs = time(runNew);
      oldMs = time(runOld);
    }
    olds.push(oldMs);
    news.push(newMs);
    ratios.push(newMs / oldMs);
  }
  const perItem = (ms: number): number => (ms * 1000) / items.length;
  return { old: perItem(median(olds)), now: perItem(median(news)), ratio: median(ratios) };
}

const messages: Buffer[] = [];
emitSimulatedTraffic([recordInto(messages)], MESSAGES, { seed: 1 });
const limits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };
const position = { topic: 'bench', partition: 0, offset: '0' };
const now = new Date();

const baseline = (): void => {
  for (const message of messages) JSON.stringify(JSON.parse(message.toString('utf8')));
};
const classifyOnly = (): void => {
  for (const message of messages) classifyMessage(message, limits);
};
async function main(): Promise<void> {
  // The geo database is opened as the composition root opens it, before anything is measured.
  const geoLookup: GeoLookup = await openGeoipLite();
  const fullPath = (): void => {
    for (const message of messages) {
      const verdict = classifyMessage(message, limits);
      if (verdict.ok) JSON.stringify(toEventDocument(verdict.event, enrich(verdict.event, geoLookup), position, now));
    }
  };

  // Warm up the JIT and geoip-lite's caches before measuring.
  baseline();
  fullPath();
  const results = { baseline: [] as number[], classify: [] as number[], full: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    results.baseline.push(time(baseline));
    results.classify.push(time(classifyOnly));
    results.full.push(time(fullPath));
  }
  const base = median(results.baseline);
  const perMessage = (ms: number): string => `${((ms * 1000) / MESSAGES).toFixed(1)} µs CPU/msg`;
  console.log(`ingest transform, ${MESSAGES} simulated messages, median of ${ROUNDS} rounds (CPU time)`);
  console.log(`  baseline JSON.parse+stringify        1.00x  (${perMessage(base)})`);
  console.log(`  classify (depth scan + parse + zod)  ${(median(results.classify) / base).toFixed(2)}x  (${perMessage(median(results.classify))})`);
  console.log(`  classify + enrich + ECS document     ${(median(results.full) / base).toFixed(2)}x  (${perMessage(median(results.full))})`);

  const events: VigilEvent[] = [];
  const parsed: unknown[] = [];
  for (const message of messages) {
    const verdict = classifyMessage(message, limits);
    if (verdict.ok) events.push(verdict.event);
    parsed.push(JSON.parse(message.toString('utf8')));
  }
  const texts = messages.map((message) => message.toString('utf8'));
  const ips = events.flatMap((event) => (event.client.ip === undefined ? [] : [event.client.ip]));
  // The ingest consumer's memory of acknowledged ids at its default bound, full: a look-up and a
  // remember per event, each pass under an index of its own (the ids are new, as in a pipeline,
  // so every remember evicts the oldest).
  const heldIds = 20_000;
  const hash = 'f'.repeat(64);
  const rememberIn = (memory: { get(index: string, id: string): unknown; remember(index: string, id: string, hash: string): void }): ((event: VigilEvent) => void) => {
    let remembered = 0;
    return (event) => {
      const index = `vigil-events-policy-pass-${Math.floor(remembered++ / events.length)}`;
      memory.get(index, event.id);
      memory.remember(index, event.id, hash);
    };
  };
  const recentBefore = new ReferenceRecentIds(heldIds);
  const recentNow = new RecentIds(heldIds);
  const rows: Array<[string, { old: number; now: number; ratio: number }]> = [
    ['content hash (canonical JSON + SHA-256)', sideBySide(events, referenceContentHash, contentHash)],
    [`recent ids: look-up + remember, ${heldIds} held`, sideBySide(events, rememberIn(recentBefore), rememberIn(recentNow))],
    [
      '`__proto__` check of a parsed message',
      sideBySide(
        parsed.map((value, index) => ({ value, text: texts[index] ?? '' })),
        ({ value }) => referenceFindPrototypeKey(value),
        ({ value, text }) => (text.includes('__proto__') || text.includes('\\u') ? findPrototypeKey(value) : undefined),
      ),
    ],
    [`IP scope (${new Set(ips).size} distinct of ${ips.length})`, sideBySide(ips, ipScopeUncached, ipScope)],
    [
      'schema check of a parsed message (zod / SDK text)',
      sideBySide(
        parsed.map((value, index) => ({ value: value as Record<string, unknown>, text: texts[index] ?? '' })),
        ({ value }) => eventSchema.safeParse(value),
        ({ value, text }) => fastMessage(value.family as Family, value, value.id, value.time, value.source)?.value === text,
      ),
    ],
  ];
  console.log(`hot-path functions, old / new side by side, median of ${ROUNDS * 2} alternating rounds`);
  for (const [name, row] of rows) {
    console.log(`  ${name.padEnd(44)} old ${row.old.toFixed(2)} µs  new ${row.now.toFixed(2)} µs  new/old ${row.ratio.toFixed(2)}`);
  }
}

main().catch((error: unknown) => {
  process.exitCode = 1;
  throw error;
});
