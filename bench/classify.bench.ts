/**
 * classifyMessage over the hostile-input bench's own traffic (test/support/fuzz.ts, the same
 * seeds and limits as bench/hostile-input.bench.ts), this build against the implementation before
 * issue 10's classify work (test/support/hot-path-reference.ts), side by side in the same process.
 * Times are the process's CPU time (user + system), median of `rounds`, the two implementations
 * alternating which goes first. Printed per message: the bad messages, the good ones, and the
 * hostile traffic as a whole (what a hostile run classifies) against the clean traffic (its good
 * events alone), with new / old for each.
 *
 *   npx tsx bench/classify.bench.ts [messages=10000] [rounds=9]
 *
 * Before it times anything it checks that both give the same result for every message (outcome,
 * reason code, message text, event): a faster classify that decides otherwise is no result.
 */
import { isDeepStrictEqual } from 'node:util';
import { classifyMessage, type Classification, type MessageLimits } from '../ingest';
import { fuzzTraffic, type FuzzMessage } from '../test/support/fuzz';
import { referenceClassifyMessage } from '../test/support/hot-path-reference';
import { positiveInteger } from './arguments';
import { median } from './stats';

const MESSAGES = positiveInteger(process.argv[2], 10_000, 'messages');
const ROUNDS = positiveInteger(process.argv[3], 9, 'rounds');
// The pipeline's defaults (platform/config.ts), which the hostile-input bench runs with.
const LIMITS: MessageLimits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };
const SEEDS = [1001, 1002, 1003];

type Classify = (value: Buffer | null, limits: MessageLimits, family: FuzzMessage['family'], now: Date) => Classification;

const now = new Date();
const traffic = SEEDS.flatMap((seed) => fuzzTraffic({ seed, count: MESSAGES, idPrefix: `bench-classify-${seed}`, ...LIMITS, now }));
const good = traffic.filter((message) => message.kind === 'good');
const bad = traffic.filter((message) => message.kind !== 'good');

/** CPU microseconds per message of one pass of `classify` over `messages`. */
function perMessage(classify: Classify, messages: readonly FuzzMessage[]): number {
  const started = process.cpuUsage();
  for (const message of messages) classify(message.value, LIMITS, message.family, now);
  const used = process.cpuUsage(started);
  return (used.user + used.system) / messages.length;
}

function main(): void {
  let differences = 0;
  for (const message of traffic) {
    const before = referenceClassifyMessage(message.value, LIMITS, message.family, now);
    const after = classifyMessage(message.value, LIMITS, message.family, now);
    if (!isDeepStrictEqual(before, after)) {
      if (differences++ < 5) process.stderr.write(`differs (seq ${message.seq}, ${message.kind}): ${JSON.stringify(before).slice(0, 300)} / ${JSON.stringify(after).slice(0, 300)}\n`);
    }
  }
  if (differences > 0) throw new Error(`${differences} of ${traffic.length} messages classified differently`);

  const implementations: [string, Classify][] = [
    ['old', referenceClassifyMessage],
    ['new', classifyMessage],
  ];
  // Each mutation of the fuzz generator on its own too (its name up to a colon), so it shows which
  // kind of bad message the time goes to.
  const kinds = new Map<string, FuzzMessage[]>();
  for (const message of traffic) {
    const kind = message.kind.split(':')[0] ?? message.kind;
    if (kind !== 'good') (kinds.get(kind) ?? kinds.set(kind, []).get(kind) ?? []).push(message);
  }
  const sets: [string, FuzzMessage[]][] = [
    ['bad', bad],
    ['good', good],
    ['hostile (all)', traffic],
    ...[...kinds].map(([kind, messages]): [string, FuzzMessage[]] => [`  ${kind}`, messages]),
  ];
  const times: Record<string, Record<string, number[]>> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? implementations : [...implementations].reverse();
    for (const [set, messages] of sets) {
      for (const [name, classify] of order) ((times[set] ??= {})[name] ??= []).push(perMessage(classify, messages));
    }
  }
  const at = (set: string, name: string): number => median(times[set]?.[name] ?? []);
  process.stdout.write(
    `classifyMessage over the hostile bench's traffic: ${traffic.length} messages (${SEEDS.length} seeds of ${MESSAGES}), ${good.length} good, ${bad.length} bad; ` +
      `CPU µs per message, median of ${ROUNDS} rounds; same result for every message checked first.\n`,
  );
  for (const [set] of sets) {
    const old = at(set, 'old');
    const now = at(set, 'new');
    const count = sets.find(([name]) => name === set)?.[1].length ?? 0;
    process.stdout.write(
      `  ${set.padEnd(24)} ${String(count).padStart(6)}  old ${old.toFixed(1).padStart(6)}  new ${now.toFixed(1).padStart(6)}  new / old ${(now / old).toFixed(2)}  (old ${((old * count) / 1000).toFixed(0).padStart(4)} ms in all)\n`,
    );
  }
  // What a hostile run classifies (every message) against what a clean run does (the good ones),
  // as the cost of the whole traffic over that of its good part.
  const hostileOverClean = (name: string): number => (at('hostile (all)', name) * traffic.length) / (at('good', name) * good.length);
  process.stdout.write(
    `  classify CPU of the hostile traffic / of its good events alone: old ${hostileOverClean('old').toFixed(2)}, new ${hostileOverClean('new').toFixed(2)}\n`,
  );
}

main();
