import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { ADAPTERS } from '../../ingest/adapters';
import { listSettings, loadConfig } from '../../platform';

const ROOT = join(__dirname, '..', '..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

const serviceSchema = z.looseObject({
  image: z.string().optional(),
  build: z.looseObject({ context: z.string(), dockerfile: z.string() }).optional(),
  command: z.array(z.string()).optional(),
  profiles: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  ports: z.array(z.string()).optional(),
  healthcheck: z.union([z.looseObject({ test: z.array(z.string()) }), z.strictObject({ disable: z.literal(true) })]).optional(),
  volumes: z.array(z.string()).optional(),
  stop_grace_period: z.string().optional(),
  depends_on: z.record(z.string(), z.looseObject({ condition: z.string() })).optional(),
});
const composeSchema = z.looseObject({ services: z.record(z.string(), serviceSchema) });
const compose = composeSchema.parse(parse(read('docker-compose.yml'), { merge: true }));
const services = compose.services;
const service = (name: string): z.infer<typeof serviceSchema> => {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};

/** `${NAME:-default}` as compose resolves it with NAME unset. */
const resolved = (value: string | number): string => String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

/** The services that run Vigil's own image: built here, or reusing the image the build tags. */
const vigilImage = service('vigil').image;
const vigilServices = Object.entries(services).filter(([, item]) => item.build !== undefined || (vigilImage !== undefined && item.image === vigilImage));

/** The Dockerfile's stages: each FROM starts one, with the instructions under it. */
function stages(dockerfile: string): { from: string; lines: string[] }[] {
  const logical = dockerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const result: { from: string; lines: string[] }[] = [];
  for (const line of logical) {
    if (/^FROM\s/i.test(line)) result.push({ from: line, lines: [] });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

describe('docker-compose.yml: the whole product', () => {
  it('has the stores, Kibana, Vigil, the dashboards loader, the demo and the gateway adapter, the last three as optional profiles', () => {
    expect(Object.keys(services).sort()).toEqual(['adapt', 'dashboards', 'demo', 'elasticsearch', 'kafka', 'kibana', 'redis', 'vigil']);
    expect(service('adapt').profiles).toEqual(['gateways']);
    // The adapter reads the raw topic the intake writes unless told another, in a format it knows.
    const [verb, formatFlag, format, topicFlag, topic] = (service('adapt').command ?? []).map(resolved);
    expect([verb, formatFlag, topicFlag]).toEqual(['adapt', '--format', '--topic']);
    expect(Object.keys(ADAPTERS)).toContain(format);
    expect(topic).toBe(loadConfig({}).intake.topic);
    for (const core of ['kafka', 'elasticsearch', 'kibana', 'redis', 'vigil']) expect(service(core).profiles).toBeUndefined();
    expect(service('dashboards').profiles).toEqual(['dashboards']);
    expect(service('demo').profiles).toEqual(['demo']);
    expect(service('dashboards').command).toEqual(['dashboards', 'install', '--kibana', 'http://kibana:5601']);
    expect(service('demo').command?.[0]).toBe('demo');
  });

  it('pins Kafka and Elasticsearch to the versions scripts/stack.sh runs, and Kibana to the same as Elasticsearch', () => {
    const stack = read('scripts/stack.sh');
    const pinned = (name: string): string => stack.match(new RegExp(`${name}_VERSION="\\$\\{VIGIL_${name}_VERSION:-([^}]+)\\}"`))?.[1] ?? 'missing';
    expect(service('elasticsearch').image).toBe(`docker.elastic.co/elasticsearch/elasticsearch:${pinned('ES')}`);
    expect(service('kibana').image).toBe(`docker.elastic.co/kibana/kibana:${pinned('ES')}`);
    expect(service('kafka').image).toBe(`apache/kafka:${pinned('KAFKA')}`);
  });

  it('gives every long-running service a healthcheck, and Vigil waits for its stores to be healthy', () => {
    for (const name of ['kafka', 'elasticsearch', 'kibana', 'redis', 'vigil', 'adapt']) {
      const check = service(name).healthcheck;
      expect(check !== undefined && 'test' in check ? check.test.length : 0).toBeGreaterThan(0);
    }
    // The one-shot services serve no /healthz: the image's check is off for them.
    for (const name of ['dashboards', 'demo']) expect(service(name).healthcheck).toEqual({ disable: true });
    expect(service('vigil').depends_on).toEqual({
      kafka: { condition: 'service_healthy' },
      elasticsearch: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    expect(service('dashboards').depends_on).toEqual({ kibana: { condition: 'service_healthy' } });
  });

  it("gives Vigil's stop longer than its own deadline (VIGIL_SHUTDOWN_TIMEOUT_MS, 30 s by default) before Docker kills it", () => {
    const grace = /^(\d+)s$/.exec(service('vigil').stop_grace_period ?? '');
    expect(Number(grace?.[1] ?? 0)).toBeGreaterThan(30);
  });

  it("checks Vigil's health on /healthz of the observability server, on the port it serves and publishes", () => {
    for (const name of ['vigil', 'adapt']) {
      const item = service(name);
      const port = String(item.environment?.VIGIL_HTTP_PORT);
      expect(item.environment?.VIGIL_HTTP_HOST).toBe('0.0.0.0');
      const check = item.healthcheck;
      expect(check !== undefined && 'test' in check ? check.test.join(' ') : '').toContain(`127.0.0.1:${port}/healthz`);
      expect(item.ports).toContain(`127.0.0.1:${port}:${port}`);
      expect(Number(/^(\d+)s$/.exec(item.stop_grace_period ?? '')?.[1] ?? 0)).toBeGreaterThan(30);
    }
    // The HTTP intake (when VIGIL_INTAKE_TOKEN is set) is published on its own port.
    const intakePort = loadConfig({}).intake.port;
    expect(service('vigil').ports).toContain(`127.0.0.1:${intakePort}:${intakePort}`);
    expect(resolved(service('vigil').environment?.VIGIL_INTAKE_TOKEN ?? 'missing')).toBe('');
  });

  it("sets only variables of the settings table on Vigil's services, and each parses as a configuration", () => {
    const known = new Set(listSettings().map(({ setting }) => setting.env));
    expect(vigilServices.map(([name]) => name).sort()).toEqual(['adapt', 'dashboards', 'demo', 'vigil']);
    for (const [name, item] of vigilServices) {
      const environment = Object.fromEntries(Object.entries(item.environment ?? {}).map(([key, value]) => [key, resolved(value)]));
      expect({ name, unknown: Object.keys(environment).filter((key) => !known.has(key)) }).toEqual({ name, unknown: [] });
      expect(() => loadConfig(environment)).not.toThrow();
      expect(environment.KAFKA_BROKERS).toBe('kafka:29092');
    }
  });

  it("the demo's topics, groups and Redis prefix are its own, so it never shares partitions or state with the vigil service", () => {
    const own = (name: string): z.infer<typeof serviceSchema>['environment'] => service(name).environment ?? {};
    const config = (name: string) => loadConfig(Object.fromEntries(Object.entries(own(name) ?? {}).map(([key, value]) => [key, resolved(value)])));
    const vigil = config('vigil');
    const demo = config('demo');
    for (const topic of Object.keys(vigil.topics) as (keyof typeof vigil.topics)[]) {
      if (topic !== 'partitions' && topic !== 'replication' && topic !== 'retentionMs') expect(demo.topics[topic]).not.toBe(vigil.topics[topic]);
    }
    expect(demo.consumerGroup).not.toBe(vigil.consumerGroup);
    expect(demo.alerting.group).not.toBe(vigil.alerting.group);
    expect(demo.alerting.notifierGroup).not.toBe(vigil.alerting.notifierGroup);
    expect(demo.redis.prefix).not.toBe(vigil.redis.prefix);
    expect(demo.alerting.notificationTopic).not.toBe(vigil.alerting.notificationTopic);
  });
});

describe('docker-compose.yml: state survives a restart', () => {
  // docs/faults.md: rule and alert state must persist; dead letters are kept 30 days.
  it("keeps Redis in an append-only file on a volume, evicting nothing, and Kafka's log on a volume", () => {
    const redis = service('redis');
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']));
    expect(redis.command).not.toContain('no');
    expect(redis.volumes).toContain('redis-data:/data');
    const kafka = service('kafka');
    expect(kafka.environment?.KAFKA_LOG_DIRS).toBe('/var/lib/kafka/data');
    expect(kafka.volumes).toContain('kafka-data:/var/lib/kafka/data');
    const declared = Object.keys((parse(read('docker-compose.yml'), { merge: true }) as { volumes?: Record<string, unknown> }).volumes ?? {});
    expect(declared).toEqual(expect.arrayContaining(['kafka-data', 'redis-data', 'elasticsearch-data']));
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const all = stages(dockerfile);
  const runtime = all.at(-1) ?? { from: '', lines: [] };

  it('builds in one stage and runs compiled JavaScript with production dependencies only in the last', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(all[0]?.lines.some((line) => /^RUN .*npm ci\b/.test(line))).toBe(true);
    expect(all[0]?.lines.some((line) => /^RUN .*scripts\/build\.sh/.test(line))).toBe(true);
    expect(runtime.lines.some((line) => /^RUN .*npm ci .*--omit=dev/.test(line))).toBe(true);
    expect(runtime.lines.some((line) => /^COPY --from=build \S+\/dist dist$/.test(line))).toBe(true);
    // No sources in the runtime image: bin/, the saved objects and the build's dist/ beside the manifests.
    const copied = runtime.lines.filter((line) => /^COPY /.test(line) && !line.includes('--from=')).map((line) => line.split(/\s+/)[1]);
    expect(copied.sort()).toEqual(['bin', 'ingest/sdk/package.json', 'package.json'].sort());
    expect(runtime.lines).toContain('ENTRYPOINT ["node", "bin/vigil.js"]');
  });

  it('sets the heap limit the memory figures were measured with, in the environment so that it can be replaced', () => {
    const env = runtime.lines.filter((line) => /^ENV\s/.test(line)).join(' ');
    expect(env).toMatch(/\bNODE_OPTIONS=--max-old-space-size=512\b/);
    expect(runtime.lines.find((line) => line.startsWith('ENTRYPOINT'))).not.toMatch(/max-old-space-size/);
  });

  it('runs as a user that is not root', () => {
    const users = runtime.lines.filter((line) => /^USER\s/i.test(line)).map((line) => line.split(/\s+/)[1] ?? '');
    expect(users.length).toBeGreaterThan(0);
    const last = (users.at(-1) ?? 'root').split(':')[0] ?? '';
    expect(['root', '0', '']).not.toContain(last);
    // By number: Kubernetes' runAsNonRoot refuses to start a user given by name.
    expect(last).toMatch(/^[1-9]\d*$/);
  });

  it('has a HEALTHCHECK on /healthz', () => {
    const healthcheck = runtime.lines.find((line) => /^HEALTHCHECK\s/.test(line)) ?? '';
    expect(healthcheck).toMatch(/CMD .*\/healthz/);
  });

  // node-rdkafka's install script compiles librdkafka: the slim base has no python3, make or g++.
  it('installs without running install scripts, in every stage', () => {
    const installs = all.flatMap((stage) => stage.lines.filter((line) => /^RUN .*npm ci\b/.test(line)));
    expect(installs.length).toBe(all.length);
    for (const line of installs) expect(line).toMatch(/npm ci [^&]*--ignore-scripts/);
  });

  it('listens on every interface of the container, health and metrics and the intake, and exposes both ports', () => {
    const env = runtime.lines.filter((line) => /^ENV\s/.test(line)).join(' ');
    expect(env).toMatch(/\bVIGIL_HTTP_HOST=0\.0\.0\.0\b/);
    expect(env).toMatch(/\bVIGIL_INTAKE_HOST=0\.0\.0\.0\b/);
    expect(runtime.lines).toContain('EXPOSE 9464 9465');
  });

  it('is not sent node_modules, dist or local secrets as build context', () => {
    const ignored = read('.dockerignore').split('\n').map((line) => line.trim());
    for (const entry of ['node_modules', 'dist', '.env', '.git']) expect(ignored).toContain(entry);
  });
});
