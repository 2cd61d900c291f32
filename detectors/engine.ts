import type { RedisClient } from '../platform';
import type { Detection } from '../schemas';
import { Instrumentation, StoreUnavailableError, type Logger } from '../platform';
import { fieldValue, inputIdentity, inputIp, scalarText, type DetectionInput } from './input';
import type { CompiledRule, RuleSet } from './rule-loader';
import { MAX_BATCH_ITEMS, defineScripts, roundTrip, stateKey, type StateCall } from './state';
import { claimHolder, detectionId, eventTime, isoTime, type Evaluation, type EvaluationContext, type StateRequest } from './evaluation';
import type { PlanBatch, PlanEntry, StateItem, StatefulRuleType } from './rule-type';
import type { Rule } from './rule-registry';
import { detectionScope } from './scope';
import { namedEntities } from './trust';

/** {@link DetectionEngineOptions.stateGraceMs} by default: a stop of up to 15 minutes keeps rule state. */
export const DEFAULT_STATE_GRACE_MS = 900_000;

/** Options of {@link DetectionEngine}. */
export interface DetectionEngineOptions {
  redis: RedisClient;
  rules: RuleSet;
  /** Prefix of every Redis key. @defaultValue 'vigil' */
  keyPrefix?: string;
  /**
   * How late (event time behind the clock) an event may arrive and still count in stateful
   * rules. Later ones are counted in `stats().late` and evaluated by stateless rules only.
   * @defaultValue 300000 (5 minutes)
   */
  allowedLatenessMs?: number;
  /**
   * How long a key's window, chain and firing claim outlive what event time needs of them (the
   * window or cooldown plus the lateness), in wall-clock time: Redis expires keys by the wall
   * clock, so a pipeline stopped longer than the state's own span would otherwise come back to
   * nothing (a burst read before the stop forgotten, a firing's claim lapsed so it fires again).
   * @defaultValue 900000 (15 minutes)
   */
  stateGraceMs?: number;
  /**
   * Lateness and state trimming always follow the event-time watermark (the latest event time
   * seen in the batch's stream, a topic partition). `wall` (production) caps the watermark at `now()`, so a producer's clock running ahead
   * can't make everyone late, and stamps detections with wall-clock time. `watermark` (replay,
   * fixtures) uses event time throughout, so a replay is reproducible. @defaultValue 'wall'
   */
  clock?: 'wall' | 'watermark';
  /** @defaultValue Date.now */
  now?: () => number;
  /** Event ids kept as evidence per detection. @defaultValue 50 */
  maxEvidence?: number;
  logger?: Logger;
  /** Where every Redis round trip is reported (`state.round_trip`). @defaultValue a new emitter, {@link DetectionEngine.events} */
  events?: Instrumentation;
}

/** A batch's reading of its stream's clock ({@link DetectionEngine.clockBatch}): per event, in order. */
export interface BatchClock {
  stream: string;
  /** The stream's watermark before this reading, for {@link DetectionEngine.rewind}. */
  before: number | undefined;
  /** The clock ("now") each event is evaluated at. */
  nows: number[];
  /** Whether the event is behind its clock by more than the allowed lateness. */
  late: boolean[];
}

/** Counters since the engine started. */
export interface DetectionStats {
  events: number;
  evaluations: number;
  detections: number;
  /** Events behind the clock by more than the allowed lateness. */
  late: number;
  /** Evaluations skipped because Redis was unavailable and the rule said `skip`. */
  degraded: number;
  /** Evaluations that failed inside the engine (a script error). */
  errors: number;
  /** Redis round trips made. */
  roundTrips: number;
  /** `evaluations`, `degraded` and `errors` again, per rule id: which rule costs, which one Redis held back. */
  byRule: Record<string, RuleEvaluationStats>;
}

/** One rule's share of the engine's evaluation counters. */
export interface RuleEvaluationStats {
  evaluations: number;
  degraded: number;
  errors: number;
  /**
   * Events within the engine's allowed lateness that the rule's state still could not count,
   * because the state had already closed their time (a surge bucket folded into its baseline):
   * too late for this rule, counted here rather than dropped silently. Not part of `late`, which
   * counts each event once, whatever the rules.
   */
  late: number;
}

const NO_RULE_STATS: RuleEvaluationStats = { evaluations: 0, degraded: 0, errors: 0, late: 0 };

/** A state item of the batch, with the compiled rule whose plug-in planned it and decides it. */
interface Pending extends StateItem {
  compiled: CompiledRule;
  ruleType: StatefulRuleType<Rule>;
}

const GROUP_SEPARATOR = ',';

/** The group-by values of an event, or undefined when one is missing. */
function groupKey(input: DetectionInput, fields: readonly string[]): { key: Record<string, string>; keyText: string } | undefined {
  const key: Record<string, string> = {};
  let keyText = '';
  for (const field of fields) {
    const value = scalarText(fieldValue(input, field));
    if (value === undefined) return undefined;
    key[field] = value;
    keyText = keyText === '' ? `${field}=${value}` : `${keyText}${GROUP_SEPARATOR}${field}=${value}`;
  }
  return { key, keyText };
}

/**
 * The key a stateless detection is filed under, when its rule has no `groupBy`: the most specific
 * actor the event proves. The user when the event proves them (trust.ts); else the IP it came
 * from (a failed login's user id is what the attacker typed, and its consumer is the whole
 * application); else the consumer; else the event itself.
 */
export function defaultKey(input: DetectionInput): { key: Record<string, string>; keyText: string } {
  const [userField, ipField, consumerField] = DEFAULT_KEY_FIELDS;
  if (inputIdentity(input) === 'proven') {
    const user = groupKey(input, [userField]);
    if (user) return user;
  }
  const ip = inputIp(input);
  if (ip !== undefined) return { key: { [ipField]: ip }, keyText: `${ipField}=${ip}` };
  return groupKey(input, [consumerField]) ?? { key: {}, keyText: `event=${input.event.id}` };
}

/** The fields {@link defaultKey} files a stateless detection under, most specific first: its user, its IP, its consumer. */
export const DEFAULT_KEY_FIELDS = ['actor.userId', 'client.ip', 'actor.consumerId'] as const;

/** A stateless detection's key: its rule's `groupBy` when the event has every field, else {@link defaultKey}. */
function statelessKey(input: DetectionInput, groupBy: readonly string[]): { key: Record<string, string>; keyText: string } {
  return (groupBy.length > 0 ? groupKey(input, groupBy) : undefined) ?? defaultKey(input);
}

/** A clocked batch's carried state ({@link StatefulRuleType.carry}), by rule id and key text. */
interface Carry {
  /** What the rewound batch this one redoes kept (and what earlier batches of the stream did not take). */
  fromRedo: ReadonlyMap<string, CarriedEntry> | undefined;
  /** What this batch keeps for its own redo: the above, and what its replies report once. */
  kept: Map<string, CarriedEntry>;
  /** The rule keys whose carried state an item was handed. */
  handed: Set<string>;
}

/** What a rule and key carry, and how many batches of the stream have gone by without an item to take it. */
interface CarriedEntry {
  values: unknown[];
  passed: number;
}

/**
 * Batches of a stream that may go by without an item of a carried rule and key before it is
 * dropped: the redo of a chunk holds the same events, but fetching ahead may cut it smaller, and
 * event-time alignment may admit less of it at once.
 */
const CARRY_BATCHES = 64;

/** The round trips one batch made: rule state, and firing claims. */
interface BatchTrips {
  state: { roundTrips: number };
  claims: { roundTrips: number };
}

/**
 * Runs a rule set over batches of events. For each batch: every stateful rule's state for every
 * event goes out in one Redis pipeline (one round trip), the pure evaluate functions decide,
 * and the "fired" marks go out in a second round trip only when something fired. The rule set
 * is read once per batch, so a reload never splits a batch between two sets.
 */
export class DetectionEngine {
  private ruleSet: RuleSet;
  /** Event-time watermark per stream (a topic partition): partitions progress independently. */
  private readonly watermarks = new Map<string, number>();
  /** What each clocked batch's replies reported once and a redo could not read again ({@link StatefulRuleType.carry}), by rule and key. */
  private readonly kept = new WeakMap<BatchClock, Map<string, CarriedEntry>>();
  /** What a rewound batch kept, per stream, for the stream's next batches (its redo). */
  private readonly carried = new Map<string, Map<string, CarriedEntry>>();
  private readonly prefix: string;
  private readonly latenessMs: number;
  private readonly stateGraceMs: number;
  private readonly maxEvidence: number;
  private readonly now: () => number;
  /** Instrumentation: `state.round_trip` after each Redis round trip (rule state, then claims). */
  readonly events: Instrumentation;
  readonly counters: DetectionStats = { events: 0, evaluations: 0, detections: 0, late: 0, degraded: 0, errors: 0, roundTrips: 0, byRule: {} };

  constructor(private readonly options: DetectionEngineOptions) {
    this.ruleSet = options.rules;
    this.prefix = options.keyPrefix ?? 'vigil';
    this.latenessMs = options.allowedLatenessMs ?? 300_000;
    this.stateGraceMs = options.stateGraceMs ?? DEFAULT_STATE_GRACE_MS;
    this.maxEvidence = options.maxEvidence ?? 50;
    this.now = options.now ?? Date.now;
    this.events = options.events ?? new Instrumentation();
    defineScripts(options.redis);
  }

  /** Swaps the whole rule set; batches already running finish with the old one. */
  setRules(ruleSet: RuleSet): void {
    this.ruleSet = ruleSet;
  }

  rules(): RuleSet {
    return this.ruleSet;
  }

  stats(): DetectionStats {
    return { ...this.counters, byRule: structuredClone(this.counters.byRule) };
  }

  /** Adds to a total and to the rule's share of it, so the two can't disagree. */
  private count(ruleId: string, counter: Exclude<keyof RuleEvaluationStats, 'late'>, amount = 1): void {
    this.counters[counter] += amount;
    this.ruleStats(ruleId)[counter] += amount;
  }

  private ruleStats(ruleId: string): RuleEvaluationStats {
    return (this.counters.byRule[ruleId] ??= { ...NO_RULE_STATS });
  }

  /**
   * The engine's notion of "now" for an event: the event-time watermark (the latest event time
   * seen), never ahead of the wall clock in production. Lateness and state trimming follow event
   * time, so a backlog after an outage replays as it happened instead of counting as late.
   */
  private clock(input: DetectionInput, stream: string): number {
    const watermark = Math.max(this.watermarks.get(stream) ?? 0, eventTime(input.event.time));
    this.watermarks.set(stream, watermark);
    return this.options.clock === 'watermark' ? watermark : Math.min(watermark, this.now());
  }

  /** Whether an event is behind its clock reading by more than the allowed lateness. */
  private isLate(input: DetectionInput, now: number): boolean {
    return eventTime(input.event.time) < now - this.latenessMs;
  }

  /**
   * Reads the stream's clock for each event of a batch, in order, as {@link evaluateBatch} does
   * (reading it moves the stream's watermark): each event's "now", and whether it is late. The
   * pipeline reads it before indexing, to mark late events' documents, and hands it to
   * `evaluateBatch`, so both see one reading.
   */
  clockBatch(inputs: readonly DetectionInput[], stream = 'default'): BatchClock {
    const before = this.watermarks.get(stream);
    const nows = inputs.map((input) => this.clock(input, stream));
    return { stream, before, nows, late: inputs.map((input, position) => this.isLate(input, nows[position] ?? 0)) };
  }

  /**
   * Puts a stream's watermark back to where a batch's reading found it, when that batch failed
   * and will be redone: the redo then reads the same clock. Only for the stream's latest reading
   * (one batch per stream at a time, as a partition's chunks are).
   */
  rewind(clock: BatchClock): void {
    if (clock.before === undefined) this.watermarks.delete(clock.stream);
    else this.watermarks.set(clock.stream, clock.before);
    // What the failed batch's replies reported once (a surge bucket folded for good) goes to the
    // redo: its round trip will not report it again, and the bucket would never be judged.
    const kept = this.kept.get(clock);
    if (kept !== undefined && kept.size > 0) this.carried.set(clock.stream, kept);
  }

  /**
   * Forgets what rewound batches kept for their redo: on a new assignment (a rebalance), the
   * partitions' chunks are redone by whichever instance now holds them, from the committed offsets.
   */
  forgetCarried(): void {
    this.carried.clear();
  }

  /**
   * Evaluates every rule on every event of a batch, in order. `clock`, when given, is this
   * batch's reading from {@link clockBatch} (its stream is the batch's).
   * @throws StoreUnavailableError when Redis is unavailable and a rule that needed it says `pause`
   */
  async evaluateBatch(inputs: readonly DetectionInput[], options: { stream?: string; clock?: BatchClock } = {}): Promise<Detection[]> {
    const startedAt = performance.now();
    // This batch's own round trips, kept apart from the totals so the batch event can report them
    // while other partitions' batches run concurrently.
    const trips: BatchTrips = { state: { roundTrips: 0 }, claims: { roundTrips: 0 } };
    const stream = options.clock?.stream ?? options.stream ?? 'default';
    if (options.clock && options.stream !== undefined && options.stream !== options.clock.stream) throw new RangeError(`evaluateBatch: a clock reading of stream ${options.clock.stream} for stream ${options.stream}`);
    if (options.clock && options.clock.nows.length !== inputs.length) throw new RangeError(`evaluateBatch: a clock reading of ${options.clock.nows.length} events for a batch of ${inputs.length}`);
    let detections: Detection[] = [];
    // A clocked batch keeps what its replies report once, in case it is rewound; it starts with
    // what a rewound batch of the stream kept (this batch is its redo), until this one decides it.
    let carry: Carry | undefined;
    if (options.clock) {
      const fromRedo = this.carried.get(stream);
      this.carried.delete(stream);
      carry = { fromRedo, kept: new Map(fromRedo), handed: new Set() };
      this.kept.set(options.clock, carry.kept);
    }
    try {
      detections = await this.evaluateBoth(inputs, options.clock?.nows ?? this.clockBatch(inputs, stream).nows, trips, carry);
      return detections;
    } finally {
      // What no item of this batch took goes on to the stream's next batch (unless this one is
      // rewound, which hands on all it kept), for a while.
      if (carry?.fromRedo !== undefined) {
        const left = new Map<string, CarriedEntry>();
        for (const [ruleKey, entry] of carry.fromRedo) if (!carry.handed.has(ruleKey) && entry.passed < CARRY_BATCHES) left.set(ruleKey, { values: entry.values, passed: entry.passed + 1 });
        if (left.size > 0 && !this.carried.has(stream)) this.carried.set(stream, left);
      }
      this.counters.roundTrips += trips.state.roundTrips + trips.claims.roundTrips;
      if (this.events.has('detectors.batch')) {
        this.events.emit('detectors.batch', {
          stream,
          events: inputs.length,
          detections: detections.length,
          stateRoundTrips: trips.state.roundTrips,
          claimRoundTrips: trips.claims.roundTrips,
          durationMs: performance.now() - startedAt,
        });
      }
    }
  }

  /**
   * `nows`: one clock reading per event, shared by both phases (the watermark must not move
   * between them). Lateness is judged within the stream the batch came from (its partition), as
   * Kafka Streams does: one partition catching up on a backlog is not late because another is current.
   */
  private async evaluateBoth(inputs: readonly DetectionInput[], nows: readonly number[], trips: BatchTrips, carry: Carry | undefined): Promise<Detection[]> {
    const ruleSet = this.ruleSet;
    this.counters.events += inputs.length;
    // Phase 1 runs every rule; rules using `detectedBy` see no detections yet, which still
    // records their other steps (a payment with no new device) in the same round trip.
    const first = await this.evaluatePhase(inputs, nows, ruleSet.rules, true, trips, carry);
    const dependent = ruleSet.rules.filter((compiled) => compiled.dependsOn.length > 0);
    const named = new Set(dependent.flatMap((compiled) => compiled.dependsOn));
    const again = inputs.flatMap((input, index) => {
      const fired = first.triggered.get(input.event.id);
      return fired && [...fired].some((ruleId) => named.has(ruleId)) ? [index] : [];
    });
    // Phase 2 only when an event made a named rule fire: rare, so usually one round trip.
    if (again.length === 0) {
      this.counters.late += first.late;
      return first.detections;
    }
    const second = await this.evaluatePhase(
      again.map((index) => ({ ...(inputs[index] as DetectionInput), detectedBy: first.triggered.get(inputs[index]?.event.id ?? '') ?? new Set<string>() })),
      again.map((index) => nows[index] ?? 0),
      dependent,
      false,
      trips,
      carry,
    );
    this.counters.late += first.late;
    return [...first.detections, ...second.detections];
  }

  private async evaluatePhase(
    inputs: readonly DetectionInput[],
    nows: readonly number[],
    rules: readonly CompiledRule[],
    countLate: boolean,
    trips: BatchTrips,
    carry: Carry | undefined,
  ): Promise<{ detections: Detection[]; triggered: Map<string, Set<string>>; late: number }> {
    // Late events of this phase (when `countLate`): the caller counts them once the batch succeeded.
    let lateEvents = 0;
    const drafts: { compiled: CompiledRule; input: DetectionInput; context: EvaluationContext; evaluation: Evaluation }[] = [];
    // Each stateful rule's matching events, event by event: its plug-in plans the whole batch at once.
    const entries: PlanEntry[][] = rules.map(() => []);
    const ruleCount = rules.length;
    for (const [position, input] of inputs.entries()) {
      const now = nows[position] ?? this.now();
      const late = this.isLate(input, now);
      if (late && countLate) lateEvents++;
      for (let index = 0; index < ruleCount; index++) {
        const compiled = rules[index] as CompiledRule;
        // The plug-in was resolved when the rule was compiled: no lookup, no closure per event.
        const { ruleType } = compiled;
        if (ruleType.plan === undefined) {
          if (!compiled.matches(input)) continue;
          const { key, keyText } = statelessKey(input, compiled.groupBy);
          const context = { key, keyText, now };
          this.count(compiled.rule.id, 'evaluations');
          const evaluation = ruleType.evaluate(input, compiled, context);
          if (evaluation.outcome === 'detected') drafts.push({ compiled, input, context, evaluation });
          continue;
        }
        if (late || !compiled.matches(input)) continue;
        const group = groupKey(input, compiled.groupBy);
        if (group === undefined) continue;
        // One object for the evaluation and the request builders (which read prefix and lateness).
        const context = { key: group.key, keyText: group.keyText, now, prefix: this.prefix, latenessMs: this.latenessMs, stateGraceMs: this.stateGraceMs, maxEvidence: this.maxEvidence };
        (entries[index] as PlanEntry[]).push({ input, context, order: position * ruleCount + index });
      }
    }

    const pending: Pending[] = [];
    const batch: PlanBatch = { afterEvents: inputs.length * ruleCount, settled: 0 };
    const planned: StateItem[] = [];
    for (let index = 0; index < ruleCount; index++) {
      const compiled = rules[index] as CompiledRule;
      const matching = entries[index] as PlanEntry[];
      const { ruleType } = compiled;
      if (matching.length === 0 || ruleType.plan === undefined) continue;
      const settledBefore = batch.settled;
      ruleType.plan(matching, compiled, batch, planned);
      if (batch.settled > settledBefore) this.count(compiled.rule.id, 'evaluations', batch.settled - settledBefore);
      for (const item of planned) {
        // Once per item, so deciding needs no lookup: the item carries its rule and plug-in.
        const owned = item as Pending;
        owned.compiled = compiled;
        owned.ruleType = ruleType;
        pending.push(owned);
      }
      planned.length = 0;
    }
    // Decided (and emitted) event by event, then rule by rule, whichever rule planned first.
    pending.sort((a, b) => a.order - b.order);
    const degraded = pending.length > 0 ? await this.runStateful(pending, drafts, trips.state, carry) : false;
    return { ...(await this.finish(drafts, degraded, trips.claims)), late: lateEvents };
  }

  /** Runs the stateful rules' round trip and decisions; true when Redis was down and rules were skipped. */
  private async runStateful(
    pending: Pending[],
    drafts: { compiled: CompiledRule; input: DetectionInput; context: EvaluationContext; evaluation: Evaluation }[],
    trips: { roundTrips: number },
    carry: Carry | undefined,
  ): Promise<boolean> {
    // One call per script for all the batch's items (a few calls when there are many), all in
    // one pipeline: one round trip, and Redis runs each call's items in order.
    const byScript = new Map<StateRequest['script'], number[]>();
    pending.forEach((item, index) => {
      const positions = byScript.get(item.request.script) ?? [];
      positions.push(index);
      byScript.set(item.request.script, positions);
    });
    const calls: number[][] = [];
    const stateCalls: StateCall[] = [];
    for (const positions of byScript.values()) {
      for (let start = 0; start < positions.length; start += MAX_BATCH_ITEMS) {
        const chunk = positions.slice(start, start + MAX_BATCH_ITEMS);
        calls.push(chunk);
        stateCalls.push({ script: (pending[chunk[0] ?? 0] as Pending).request.script, items: chunk.map((position) => (pending[position] as Pending).request) });
      }
    }
    let callReplies: Awaited<ReturnType<typeof roundTrip>>;
    try {
      callReplies = await roundTrip(this.options.redis, stateCalls, { operation: 'rule state', events: this.events, stats: trips });
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      this.onStoreDown(pending, error);
      return true;
    }
    // Back to one [error, reply] per pending item: a failed call fails its items; an item's own
    // failure is a ReplyError in its place.
    const replies: [Error | null, unknown][] = new Array<[Error | null, unknown]>(pending.length);
    calls.forEach((positions, call) => {
      const reply = callReplies[call] ?? { ok: false, error: new Error('no reply') };
      positions.forEach((position, index) => {
        const item: unknown = reply.ok ? (reply.value as unknown[] | undefined)?.[index] : undefined;
        if (!reply.ok) replies[position] = [reply.error, null];
        else if (item === undefined) replies[position] = [new Error(`${pending[position]?.request.script} sent no reply for item ${index + 1}`), null];
        else replies[position] = item instanceof Error ? [item, null] : [null, item];
      });
    });
    // Fired marks from earlier in this batch, so one batch can't fire twice for one window.
    const firedInBatch = new Map<string, number>();
    pending.forEach((item, index) => {
      const [error, reply] = replies[index] ?? [new Error('no reply'), null];
      this.count(item.compiled.rule.id, 'evaluations');
      if (error) {
        this.count(item.compiled.rule.id, 'errors');
        this.options.logger?.error({ err: error, ruleId: item.compiled.rule.id }, 'rule state script failed');
        return;
      }
      // Keyed by rule and group key; built only once something in the batch has fired.
      const firedKey = firedInBatch.size > 0 ? `${item.compiled.rule.id}\u0000${item.context.keyText}` : undefined;
      const earlier = firedKey === undefined ? undefined : firedInBatch.get(firedKey);
      const context = earlier === undefined ? item.context : { ...item.context, firedEarlierInBatch: earlier };
      let carried: unknown[] | undefined;
      if (carry !== undefined && item.ruleType.carry !== undefined) {
        const ruleKey = `${item.compiled.rule.id}\u0000${item.context.keyText}`;
        // Handed to the first item of the rule and key only: judged once.
        if (!carry.handed.has(ruleKey)) {
          carry.handed.add(ruleKey);
          carried = carry.fromRedo?.get(ruleKey)?.values;
        }
        const kept = item.ruleType.carry(item, reply);
        if (kept !== undefined) carry.kept.set(ruleKey, { values: [...(carry.kept.get(ruleKey)?.values ?? []), kept], passed: 0 });
      }
      const decided = item.ruleType.decide(item, reply, item.compiled, context, carried);
      for (const evaluation of Array.isArray(decided) ? (decided as readonly Evaluation[]) : [decided as Evaluation]) {
        if (evaluation.outcome === 'detected' && evaluation.detection.cooldownMs !== undefined) {
          // The window's end, as the claim in Redis records it and `suppressed` compares: a late
          // event's own time would suppress a window the claim would have let through.
          firedInBatch.set(`${item.compiled.rule.id}\u0000${item.context.keyText}`, Math.max(earlier ?? Number.NEGATIVE_INFINITY, evaluation.detection.windowEnd));
        }
        // Too late for the rule's state: counted, never silently dropped.
        if (evaluation.outcome === 'none' && evaluation.lateEvents !== undefined) this.ruleStats(item.compiled.rule.id).late += evaluation.lateEvents;
        // Only detections go on: `none` evaluations end here.
        if (evaluation.outcome === 'detected') drafts.push({ compiled: item.compiled, input: evaluation.input ?? item.input, context, evaluation });
      }
    });
    return false;
  }

  private onStoreDown(pending: Pending[], error: StoreUnavailableError): void {
    if (pending.some((item) => item.compiled.rule.onStateUnavailable === 'pause')) throw error;
    for (const item of pending) this.count(item.compiled.rule.id, 'degraded');
    this.options.logger?.warn({ err: error, skipped: pending.length }, 'Redis unavailable: stateful rules skipped (degraded)');
  }

  /**
   * Turns drafts into detections. Detections with a cooldown first claim their window in Redis
   * (one more round trip, only when something fired): a claim another batch already made wins,
   * so concurrent partitions can't report one window twice.
   */
  private async finish(
    drafts: { compiled: CompiledRule; input: DetectionInput; context: EvaluationContext; evaluation: Evaluation }[],
    degraded: boolean,
    trips: { roundTrips: number },
  ): Promise<{ detections: Detection[]; triggered: Map<string, Set<string>> }> {
    const candidates: { detection: Detection; input: DetectionInput; claim?: { key: string; time: number; cooldownMs: number; ttl: number } }[] = [];
    for (const { compiled, input, context, evaluation } of drafts) {
      if (evaluation.outcome !== 'detected') continue;
      const { rule } = compiled;
      const { windowStart, windowEnd, identity, cooldownMs, claimScope, time: happened, judgedAt, ...evidence } = evaluation.detection;
      const id = detectionId(identity);
      candidates.push({
        input,
        detection: {
          id,
          ruleId: rule.id,
          ruleVersion: rule.version,
          ruleName: rule.name,
          ruleType: rule.type,
          severity: rule.severity,
          tags: [...rule.tags],
          ...evidence,
          key: context.key,
          eventIds: cappedEvidence(evidence.eventIds, this.maxEvidence),
          window: { start: new Date(windowStart).toISOString(), end: new Date(windowEnd).toISOString(), durationMs: windowEnd - windowStart },
          time: happened === undefined ? isoTime(input.event.time) : new Date(happened).toISOString(),
          // Decided after its time (a surge bucket judged on close): the alerter folds it then.
          ...(judgedAt === undefined || judgedAt <= (happened ?? eventTime(input.event.time)) ? {} : { judgedAt: new Date(judgedAt).toISOString() }),
          // Wall-clock time in production; the watermark in replay, so replays are reproducible.
          detectedAt: new Date(this.options.clock === 'watermark' ? context.now : this.now()).toISOString(),
          // Found while stateful rules were skipped (Redis down, rule set to skip).
          degraded,
          // The endpoint of the completing event: the alerter's roll-up matches it.
          ...scopeField(input.event),
          // The user a proven completing event names on an IP-keyed rule: the alerter links them.
          ...entitiesField(rule.type, context.key, input, evidence.eventIds),
        },
        ...(cooldownMs === undefined
          ? {}
          : { claim: { key: stateKey(this.prefix, rule.id, context.keyText, claimScope === undefined ? 'fired' : `fired:${claimScope}`), time: windowEnd, cooldownMs, ttl: cooldownMs + this.latenessMs + this.stateGraceMs } }),
      });
    }
    const claims = candidates.flatMap(({ claim, detection, input }) => (claim === undefined ? [] : [{ claim, detection, input }]));
    const refused = new Set<Detection>();
    if (claims.length > 0) {
      const replies = await roundTrip(
        this.options.redis,
        claims.map(({ claim, detection, input }) => ({ script: 'claimFiring', keys: [claim.key], args: [claim.time, claim.cooldownMs, claim.ttl, claimHolder(detection.id, input.event.id)] })),
        { operation: 'claims', events: this.events, stats: trips },
      );
      claims.forEach((candidate, index) => {
        const reply = replies[index];
        // A script error here leaves the claim unknown: the batch is retried rather than guessed.
        if (reply === undefined || !reply.ok) throw new StoreUnavailableError('redis', `claiming a detection failed: ${reply?.error.message ?? 'no reply'}`, reply?.error);
        if (Number(reply.value) !== 1) refused.add(candidate.detection);
      });
    }
    const detections: Detection[] = [];
    const triggered = new Map<string, Set<string>>();
    const emitted = new Set<string>();
    for (const { detection, input } of candidates) {
      if (refused.has(detection) || emitted.has(detection.id)) continue;
      emitted.add(detection.id);
      detections.push(detection);
      const rules = triggered.get(input.event.id) ?? new Set<string>();
      rules.add(detection.ruleId);
      triggered.set(input.event.id, rules);
    }
    this.counters.detections += detections.length;
    return { detections, triggered };
  }
}

/**
 * At most `max` event ids, oldest first, the last one kept: it is the event that completed the
 * detection (a takeover's sign-in), which the detection's document and an analyst look for first.
 * A plain cut to the first `max` dropped it from a chain longer than that.
 */
export function cappedEvidence(eventIds: readonly string[], max: number): string[] {
  if (eventIds.length <= max) return [...eventIds];
  const last = eventIds[eventIds.length - 1];
  return max <= 1 || last === undefined ? eventIds.slice(0, max) : [...eventIds.slice(0, max - 1), last];
}

/** The detection's `scope` field, when the event names an endpoint. */
function scopeField(event: DetectionInput['event']): Pick<Detection, 'scope'> {
  const scope = detectionScope(event);
  return scope === undefined ? {} : { scope };
}

/** The detection's `entities` field, when the completing event proves a user the key does not name (trust.ts). */
function entitiesField(ruleType: string, key: Readonly<Record<string, string>>, input: DetectionInput, eventIds: readonly string[]): Pick<Detection, 'entities'> {
  const userId = input.event.actor.userId;
  const entities = namedEntities(ruleType, key, { identity: inputIdentity(input), eventId: input.event.id, ...(userId === undefined ? {} : { userId }) }, eventIds);
  return entities === undefined ? {} : { entities };
}
