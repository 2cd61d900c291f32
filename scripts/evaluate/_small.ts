import { runEvaluation, formatEvaluation } from './run';
void (async () => {
  const result = await runEvaluation({ seed: Number(process.argv[2] ?? 1), users: 100, requestsPerUser: 15, volume: 0.3, progress: (line) => console.log(line) });
  console.log(formatEvaluation(result));
  process.exit(0);
})();
