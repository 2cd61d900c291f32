/**
 * Which faults a run of the fault-injection suite (`npm run faults`, scripts/faults.ts) injects:
 * `--only <words>` on the command line (`npm run faults -- --only redis,webhook`), or
 * `VIGIL_FAULTS_ONLY` in the environment. Pure, so a unit test can check it.
 */
import { ValidationError } from '../platform';

/** What the selection needs to know of a fault. */
export interface SelectableFault {
  /** The short word that names it on the command line: `kill`, `kafka`, `redis`, ... */
  key: string;
  /** Its name in the table. */
  name: string;
  /** When it strikes, as a fraction of the pacing; 0 for the fault-free reference, which always runs. */
  at: number;
}

/**
 * The words of `--only` (`--only a,b`, `--only=a,b`, the flag given more than once) or, without
 * it, of `VIGIL_FAULTS_ONLY`; undefined when neither names anything (run every fault).
 * @throws ValidationError for an argument the suite does not know, or `--only` without words.
 */
export function onlyWords(argv: readonly string[], fromEnvironment: string | undefined): string[] | undefined {
  const words: string[] = [];
  let flagged = false;
  const split = (value: string): string[] =>
    value
      .split(',')
      .map((word) => word.trim().toLowerCase())
      .filter((word) => word.length > 0);
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    if (argument === '--only') {
      const value = argv[index + 1];
      if (value === undefined || value.startsWith('--') || split(value).length === 0) throw new ValidationError('npm run faults', ['--only needs the faults to run, e.g. --only redis,webhook']);
      words.push(...split(value));
      flagged = true;
      index++;
    } else if (argument.startsWith('--only=')) {
      const value = split(argument.slice('--only='.length));
      if (value.length === 0) throw new ValidationError('npm run faults', ['--only needs the faults to run, e.g. --only=redis,webhook']);
      words.push(...value);
      flagged = true;
    } else {
      throw new ValidationError('npm run faults', [`unknown argument '${argument}' (the suite takes --only <faults>)`]);
    }
  }
  if (flagged) return words;
  const environment = split(fromEnvironment ?? '');
  return environment.length > 0 ? environment : undefined;
}

/**
 * The faults to run, in the suite's order: the reference always, and each fault one of the words
 * names (its key, or a word of its name such as `elasticsearch` or `rebalance`).
 * @throws ValidationError naming a word that matches no fault, with the keys it could have been.
 */
export function selectFaults<T extends SelectableFault>(faults: readonly T[], words: readonly string[] | undefined): T[] {
  if (words === undefined) return [...faults];
  const matches = (fault: T, word: string): boolean => fault.key === word || fault.name.toLowerCase().includes(word);
  const unknown = words.filter((word) => !faults.some((fault) => fault.at !== 0 && matches(fault, word)));
  if (unknown.length > 0) {
    const keys = faults.filter((fault) => fault.at !== 0).map((fault) => fault.key);
    throw new ValidationError('npm run faults', unknown.map((word) => `--only: no fault is called '${word}' (choose from ${keys.join(', ')})`));
  }
  return faults.filter((fault) => fault.at === 0 || words.some((word) => matches(fault, word)));
}
