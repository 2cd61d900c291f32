/**
 * `vigil run` as a supervisor sees it: SIGTERM stops it with exit code 0; a consumer that can't
 * be restarted makes it exit with 1 and one log line saying why. Runs the built CLI (bin/vigil.js).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { ensureTopics, loadConfig } from '../../platform';
import { isolatedEnv, openStack, waitFor, type Stack } from '../support/harness';

const ROOT = join(__dirname, '..', '..');

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function startRun(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'vigil.js'), 'run'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** The log lines (pino JSON) whose message matches. */
function lines(output: string, message: RegExp): { level: number; msg: string }[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => message.test(entry.msg));
}

const rogueAssigner: PartitionAssigner = () => ({
  name: 'RogueAssigner',
  version: 1,
  protocol: ({ topics }) => ({ name: 'RogueAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }),
  assign: ({ members }) =>
    Promise.resolve(members.map(({ memberId }) => ({ memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: {}, userData: Buffer.alloc(0) }) }))),
});

describe('vigil run', () => {
  let env: Record<string, string>;
  let stack: Stack;

  beforeAll(() => {
    const build = spawnSync('bash', [join(ROOT, 'scripts', 'build.sh'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`the build failed: ${build.stdout}${build.stderr}`);
  });

  beforeEach(() => {
    env = isolatedEnv({ VIGIL_TOPIC_PARTITIONS: '1', VIGIL_RULES_WATCH: 'off', LOG_LEVEL: 'info' });
    stack = openStack(loadConfig({ ...process.env, ...env }));
  });

  afterEach(async () => {
    await stack.cleanup();
  });

  it('stops on SIGTERM and exits with 0', async () => {
    const run = startRun(env);
    try {
      await waitFor('vigil run to start', () => lines(run.output(), /^alerting started$/).length === 1, 60_000);
      run.child.kill('SIGTERM');
      expect(await run.exit).toBe(0);
      expect(lines(run.output(), /^stopping$/)).toHaveLength(1);
      expect(lines(run.output(), /^ingest pipeline stopped$/)).toHaveLength(1);
      expect(lines(run.output(), /Connection is closed/)).toEqual([]);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('exits with 1 and one clear line when a consumer cannot be restarted', async () => {
    await ensureTopics(stack.kafka, stack.config);
    const rogue = stack.kafka.consumer({ groupId: stack.config.consumerGroup, partitionAssigners: [rogueAssigner] });
    const joined = new Promise<void>((resolve) => rogue.on(rogue.events.GROUP_JOIN, () => resolve()));
    await rogue.connect();
    await rogue.subscribe({ topic: stack.config.topics.policy });
    await rogue.run({ eachMessage: () => Promise.resolve() });
    await joined;
    const run = startRun({ ...env, VIGIL_CONSUMER_MAX_RESTARTS: '0' });
    try {
      expect(await run.exit).toBe(1);
      const fatal = lines(run.output(), /^vigil failed/);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]?.level).toBe(60);
      expect(fatal[0]?.msg).toMatch(/^vigil failed, exiting with 1 so a supervisor restarts it: the ingest consumer \(group it-[0-9a-f]+-ingest\) was given up after 1 crash within its restart window: /);
    } finally {
      run.child.kill('SIGKILL');
      await rogue.disconnect();
    }
  });
});
