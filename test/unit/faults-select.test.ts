import { ValidationError } from '../../platform';
import { onlyWords, selectFaults, type SelectableFault } from '../../scripts/faults-select';

const FAULTS: SelectableFault[] = [
  { key: 'reference', name: 'none (reference)', at: 0 },
  { key: 'kill', name: 'vigil run SIGKILLed mid-batch', at: 0.4 },
  { key: 'kafka', name: 'Kafka broker stopped 30 s', at: 0.3 },
  { key: 'elasticsearch', name: 'Elasticsearch stopped 60 s', at: 0.3 },
  { key: 'redis', name: 'Redis restarted (down 10 s, AOF)', at: 0.4 },
  { key: 'rebalance', name: 'second vigil run added, then removed (rebalance)', at: 0.25 },
  { key: 'webhook', name: 'webhook receiver down 120 s', at: 0.2 },
];
const keys = (faults: readonly SelectableFault[]): string[] => faults.map((fault) => fault.key);

describe('fault selection (npm run faults -- --only)', () => {
  it('runs every fault without --only or VIGIL_FAULTS_ONLY', () => {
    expect(onlyWords([], undefined)).toBeUndefined();
    expect(onlyWords([], ' , ')).toBeUndefined();
    expect(keys(selectFaults(FAULTS, undefined))).toEqual(keys(FAULTS));
  });

  it('reads --only in both spellings, repeated, comma-separated and in any case', () => {
    expect(onlyWords(['--only', 'redis'], undefined)).toEqual(['redis']);
    expect(onlyWords(['--only=Redis, webhook'], undefined)).toEqual(['redis', 'webhook']);
    expect(onlyWords(['--only', 'kafka', '--only=kill'], undefined)).toEqual(['kafka', 'kill']);
  });

  it('prefers --only to VIGIL_FAULTS_ONLY, and falls back to it', () => {
    expect(onlyWords(['--only', 'redis'], 'kafka')).toEqual(['redis']);
    expect(onlyWords([], 'kafka,webhook')).toEqual(['kafka', 'webhook']);
  });

  it('keeps the reference first and the suite order, whatever order the words come in', () => {
    expect(keys(selectFaults(FAULTS, ['webhook', 'redis']))).toEqual(['reference', 'redis', 'webhook']);
  });

  it('matches a fault by its key or a word of its name', () => {
    expect(keys(selectFaults(FAULTS, ['sigkill']))).toEqual(['reference', 'kill']);
    expect(keys(selectFaults(FAULTS, ['broker']))).toEqual(['reference', 'kafka']);
  });

  it('refuses a word that names no fault, listing the keys', () => {
    const attempt = (): unknown => selectFaults(FAULTS, ['redis', 'postgres']);
    expect(attempt).toThrow(ValidationError);
    expect(attempt).toThrow("--only: no fault is called 'postgres' (choose from kill, kafka, elasticsearch, redis, rebalance, webhook)");
    // The reference is not a fault to choose: it always runs.
    expect(() => selectFaults(FAULTS, ['reference'])).toThrow("no fault is called 'reference'");
  });

  it('refuses --only without words and an argument it does not know', () => {
    expect(() => onlyWords(['--only'], undefined)).toThrow('--only needs the faults to run');
    expect(() => onlyWords(['--only', '--only=redis'], undefined)).toThrow('--only needs the faults to run');
    expect(() => onlyWords(['--only='], undefined)).toThrow('--only needs the faults to run');
    expect(() => onlyWords(['redis'], undefined)).toThrow("unknown argument 'redis'");
    let thrown: unknown;
    try {
      onlyWords(['--fast'], undefined);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).retriable).toBe(false);
  });
});
