import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { ensureTopics } from '../../platform';
import { createEmitter, partitionKeyOf } from '../../ingest/sdk';
import type { VigilEvent } from '../../schemas';
import { freePort, isolatedConfig, openStack, readTopic, waitFor, type Stack } from '../support/harness';

/** Forwards a loopback port to the real broker: the "Kafka comes back" switch. */
function forward(port: number, target: { host: string; port: number }): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  return new Promise((done) => server.listen(port, '127.0.0.1', () => done(server)));
}

describe('the SDK emitter against the real Kafka', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    await ensureTopics(stack.kafka, stack.config);
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('delivers validated events keyed by user, else consumer, else IP', async () => {
    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'keys-test', kind: 'service' } });
    const resource = { api: 'a', method: 'GET', path: '/x' } as const;
    emitter.invocation({ actor: { userId: 'u-1', consumerId: 'c-1' }, invocation: { resource, route: '/x', status: 200, latencyMs: 1 } });
    emitter.invocation({ actor: { consumerId: 'c-2' }, client: { ip: '8.8.8.8' }, invocation: { resource, route: '/x', status: 200, latencyMs: 1 } });
    emitter.invocation({ client: { ip: '8.8.4.4' }, invocation: { resource, route: '/x', status: 200, latencyMs: 1 } });
    await emitter.close();
    expect(emitter.stats()).toMatchObject({ accepted: 3, delivered: 3, dropped: 0, buffered: 0 });
    // Delivery is at least once: a produce request the broker answered "not the leader" for one
    // partition (a topic created a moment before) is sent again whole, so a message of another
    // partition can be written twice. Consumers dedupe by event id; so does this test.
    const eventId = (message: KafkaMessage): string => (JSON.parse(message.value?.toString() ?? '{}') as VigilEvent).id;
    const read = await readTopic(stack.kafka, stack.config.topics.invocation, 3, 30_000, eventId);
    const messages = [...new Map(read.map((message) => [eventId(message), message])).values()];
    expect(messages.map((message) => message.key?.toString()).sort()).toEqual(['8.8.4.4', 'c-2', 'u-1']);
    for (const message of messages) {
      const event = JSON.parse(message.value?.toString() ?? '{}') as VigilEvent;
      expect(partitionKeyOf(event)).toBe(message.key?.toString());
      expect(event.source.service).toBe('keys-test');
    }
  });

  it('keeps events while Kafka is away, drops and counts what overflows, and delivers the rest when it is back', async () => {
    const port = await freePort();
    const broker = stack.config.kafka.brokers[0] ?? '127.0.0.1:9092';
    const [host, brokerPort] = broker.split(':');
    const kafka = new Kafka({ clientId: 'emitter-outage', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const dropped: string[] = [];
    const emitter = createEmitter({
      kafka,
      topics: stack.config.topics,
      source: { service: 'outage-test', kind: 'service' },
      maxBuffer: 20,
      lingerMs: 10,
      onDrop: (event, reason) => dropped.push(`${event.id}:${reason}`),
    });
    const resource = { api: 'a', method: 'POST', path: '/pay' } as const;
    for (let n = 0; n < 50; n++) {
      const result = emitter.policy({
        id: `evt-outage-${String(n).padStart(3, '0')}`,
        actor: { userId: 'u-outage' },
        policy: { kind: 'authn', name: 'token', outcome: 'pass', group: 'g', resource },
      });
      expect(result.accepted).toBe(n < 20);
    }
    await waitFor('a failed delivery attempt', () => emitter.stats().sendFailures >= 1, 20_000);
    expect(emitter.stats()).toMatchObject({ accepted: 20, delivered: 0, dropped: 30, buffered: 20 });
    expect(dropped).toHaveLength(30);
    expect(dropped[0]).toBe('evt-outage-020:buffer_full');

    const server = await forward(port, { host: host ?? '127.0.0.1', port: Number(brokerPort) });
    try {
      await waitFor('delivery once Kafka is reachable', () => emitter.stats().delivered === 20, 60_000);
      await emitter.close();
      const messages = await readTopic(stack.kafka, stack.config.topics.policy, 20);
      const ids = messages.map((message) => (JSON.parse(message.value?.toString() ?? '{}') as VigilEvent).id);
      // One user, one partition: the order they were emitted in.
      expect(ids).toEqual(Array.from({ length: 20 }, (_, n) => `evt-outage-${String(n).padStart(3, '0')}`));
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  it('close() ends within its deadline on a broker that takes connections and never answers: what is left is dropped as closed, and it rejects saying how many', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = address !== null && typeof address === 'object' ? address.port : 0;
    const kafka = new Kafka({ clientId: 'emitter-silent', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, connectionTimeout: 60_000, requestTimeout: 60_000 });
    const dropped: { id: string; reason: string }[] = [];
    const emitter = createEmitter({ kafka, topics: stack.config.topics, source: { service: 'silent-test', kind: 'service' }, lingerMs: 1, onDrop: (event, reason) => dropped.push({ id: event.id, reason }) });
    const resource = { api: 'a', method: 'GET', path: '/x' } as const;
    try {
      for (let n = 0; n < 3; n++) emitter.invocation({ id: `evt-silent-${n}`, actor: { userId: 'u-silent' }, invocation: { resource, route: '/x', status: 200, latencyMs: 1 } });
      await waitFor('the emitter to connect to the silent broker', () => sockets.length > 0, 10_000);
      // kafkajs alone would wait for its 60 s timeouts, then retry: the close bounds it.
      await expect(emitter.close({ timeoutMs: 1500 })).rejects.toThrow('close: 3 events were not acknowledged by Kafka within 1500 ms; they were dropped (onDrop, reason "closed")');
      expect(dropped.map(({ id }) => id).sort()).toEqual(['evt-silent-0', 'evt-silent-1', 'evt-silent-2']);
      expect(new Set(dropped.map(({ reason }) => reason))).toEqual(new Set(['closed']));
      expect(emitter.stats()).toMatchObject({ accepted: 3, delivered: 0, dropped: 3, buffered: 0, bufferedBytes: 0 });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, 30_000);

  it('a script that emits and ends without close() still delivers its events, and exits by itself', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'vigil-emitter-exit-'));
    // A topic of its own: the event found there is this script's.
    const topics = { ...stack.config.topics, invocation: `${stack.config.topics.invocation}.exit` };
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: topics.invocation, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    try {
      const script = join(folder, 'emit-and-return.ts');
      // As the README's first example, less the close(): the event waits for its linger timer,
      // which holds nothing open, so the process would end before sending it.
      writeFileSync(
        script,
        `import { Kafka, logLevel } from 'kafkajs';
import { createEmitter } from ${JSON.stringify(join(__dirname, '..', '..', 'ingest', 'sdk'))};
const kafka = new Kafka({ clientId: 'exit-test', brokers: ${JSON.stringify(stack.config.kafka.brokers)}, logLevel: logLevel.NOTHING });
const emitter = createEmitter({ kafka, topics: ${JSON.stringify(topics)}, source: { service: 'exit-test', kind: 'service' }, lingerMs: 200,
  logger: { warn: (fields: object, message: string) => console.log(JSON.stringify({ message, ...fields })), child() { return this; } } as never });
emitter.invocation({ id: 'evt-exit-1', actor: { userId: 'u-exit' }, invocation: { resource: { api: 'a', method: 'GET', path: '/x' }, route: '/x', status: 200, latencyMs: 1 } });
`,
      );
      // The script lives outside the repository (the linter reads every file in it): it finds kafkajs through NODE_PATH.
      const root = join(__dirname, '..', '..');
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, NODE_PATH: join(root, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect({ code, exitLine: output.includes('the process is exiting with events buffered and the emitter not closed') }).toEqual({ code: 0, exitLine: true });
      const read = await readTopic(stack.kafka, topics.invocation, 1, 30_000);
      expect(read.map((message) => (JSON.parse(message.value?.toString() ?? '{}') as VigilEvent).id)).toEqual(['evt-exit-1']);
    } finally {
      rmSync(folder, { recursive: true, force: true });
      const cleaner = stack.kafka.admin();
      await cleaner.connect();
      await cleaner.deleteTopics({ topics: [topics.invocation] }).catch(() => undefined);
      await cleaner.disconnect();
    }
  }, 60_000);

  it('says a topic is missing when the broker does not host it, naming the topic and how to create it', async () => {
    const warnings: { message: string; topics?: string[] }[] = [];
    const logger = { warn: (fields: { topics?: string[] }, message: string) => void warnings.push({ message, ...fields }), child: () => logger };
    const missing = `${stack.config.topics.invocation}.missing`;
    const emitter = createEmitter({ kafka: stack.kafka, topics: { ...stack.config.topics, invocation: missing }, source: { service: 'missing-test', kind: 'service' }, lingerMs: 1, logger });
    emitter.invocation({ actor: { userId: 'u-missing' }, invocation: { resource: { api: 'a', method: 'GET', path: '/x' }, route: '/x', status: 200, latencyMs: 1 } });
    await expect(emitter.flush()).rejects.toThrow();
    expect(warnings.find(({ message }) => message.startsWith('event delivery failed: a topic does not exist'))).toMatchObject({ topics: [missing] });
    await emitter.close({ timeoutMs: 1000 }).catch(() => undefined);
  }, 60_000);

  it('keeps sending after a flush that found nothing to send', async () => {
    // Regression: a drain that found the buffer empty settled at once and was never cleared,
    // so every later send waited on it and nothing more was delivered.
    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'flush-test', kind: 'service' }, lingerMs: 10 });
    const resource = { api: 'a', method: 'GET', path: '/x' } as const;
    const emit = (n: number): void => {
      emitter.invocation({ id: `evt-flush-${n}`, actor: { userId: 'u-flush' }, invocation: { resource, route: '/x', status: 200, latencyMs: 1 } });
    };
    for (let n = 0; n < 600; n++) emit(n);
    await emitter.flush();
    await emitter.flush();
    for (let n = 600; n < 1300; n++) emit(n);
    await emitter.flush();
    expect(emitter.stats()).toMatchObject({ accepted: 1300, delivered: 1300, buffered: 0 });
    await emitter.close();
  });
});
