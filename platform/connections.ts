import { errors as esErrors, type Client } from '@elastic/elasticsearch';
import type { Admin, Kafka } from 'kafkajs';
import type { Config } from './config';
import { VigilError, errorMessage, urlWithoutCredentials } from './errors';
import { isCluster, redisWhere, type RedisClient } from './redis';

/** A service Vigil needs could not be used at start: it is named, with why and where. */
export class ConnectionError extends VigilError {
  readonly service: 'kafka' | 'elasticsearch' | 'redis';

  constructor(service: ConnectionError['service'], where: string, problem: 'authentication failed' | 'TLS failed' | 'database refused' | 'unreachable', cause: unknown) {
    // A wrong credential, certificate or database won't fix itself; an unreachable service may come back.
    super(`${service} (${where}): ${problem}: ${errorMessage(cause)}`, { code: 'connection_failed', retriable: problem === 'unreachable', cause });
    this.service = service;
  }
}

/**
 * The one request that proves each service answers and accepts Vigil: a Redis PING, an
 * Elasticsearch cluster health (it needs only the monitor privilege and answers whatever the
 * cluster's colour), a Kafka metadata request. The start check and /readyz both use these.
 */
export const probes = {
  /** On a cluster, every master must answer: one down leaves its slots' state out of reach. */
  redis: async (redis: RedisClient): Promise<unknown> => {
    if (!isCluster(redis)) return redis.ping();
    await redis.ping();
    return Promise.all(redis.nodes('master').map((node) => node.ping()));
  },
  elasticsearch: (client: Client, timeoutMs: number): Promise<unknown> => client.cluster.health({ timeout: `${timeoutMs}ms` }),
  kafka: (admin: Admin): Promise<unknown> => admin.describeCluster(),
};

const TLS_PROBLEM = /certificate|self[- ]signed|SSL|TLS|EPROTO|wrong version number/i;
/** A socket that dropped or never opened: the service may be restarting, whatever the message says. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * What a Redis client's own `error` event says of a failed connection: TLS only for what a
 * certificate or the handshake's protocol explains (a reset during a handshake, "Client network
 * socket disconnected before secure TLS connection was established", is a Redis restarting or
 * failing over, not a certificate to fix).
 */
function clientProblem(error: unknown, authentication: RegExp): 'authentication failed' | 'TLS failed' | 'unreachable' {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return 'unreachable';
  return problemOf(error, authentication);
}

function problemOf(error: unknown, authentication: RegExp): 'authentication failed' | 'TLS failed' | 'unreachable' {
  const text = `${error instanceof Error ? error.name : ''} ${errorMessage(error)} ${error instanceof Error && error.cause ? errorMessage(error.cause) : ''}`;
  if (authentication.test(text)) return 'authentication failed';
  if (TLS_PROBLEM.test(text)) return 'TLS failed';
  return 'unreachable';
}

/**
 * Checks, before anything starts, that each service answers and accepts Vigil's credentials. A
 * wrong password or CA stops the start with one line naming the service, instead of a consumer
 * that retries in the background forever. A service that is only unreachable is returned, not
 * thrown: the parts that need it back off and recover when it comes (Redis may be down at start;
 * Kafka and Elasticsearch are needed to start at all, and their parts fail then).
 * Only the clients given are checked (a command that uses Redis alone passes Redis alone).
 * @returns the services that could not be reached, as retriable ConnectionErrors
 * @throws ConnectionError when a credential or a certificate is refused
 */
export async function verifyConnections(config: Config, clients: { kafka?: Kafka; elasticsearch?: Client; redis?: RedisClient }): Promise<ConnectionError[]> {
  const checks: Promise<ConnectionError | undefined>[] = [];
  const redis = clients.redis;
  if (redis) {
    // ioredis answers a failed command with its own wrapper ("Reached the max retries per request
    // limit"), which hides why the connection failed: the client's last `error` event says it (an
    // untrusted certificate was taken for an unreachable Redis, and Vigil started degraded).
    let lastClientError: unknown;
    const remember = (error: unknown): void => {
      lastClientError = error;
    };
    redis.on('error', remember);
    const redisAuthentication = /WRONGPASS|NOAUTH|NOPERM|invalid username-password/i;
    checks.push(
      probes.redis(redis).finally(() => redis.off('error', remember)).then(
        async () => {
          // ioredis selects REDIS_URL's database on connecting, and when Redis refuses it (out of
          // range) only logs and carries on in database 0: ask again, and stop if it is refused.
          const db = isCluster(redis) ? 0 : (redis.options.db ?? 0);
          if (db === 0) return undefined;
          return redis.select(db).then(
            () => undefined,
            (error: unknown) => new ConnectionError('redis', redisWhere(config), 'database refused', error),
          );
        },
        (error: unknown) => {
          const problem = problemOf(error, redisAuthentication);
          const underneath = lastClientError === undefined ? 'unreachable' : clientProblem(lastClientError, redisAuthentication);
          return problem === 'unreachable' && underneath !== 'unreachable'
            ? new ConnectionError('redis', redisWhere(config), underneath, lastClientError)
            : new ConnectionError('redis', redisWhere(config), problem, error);
        },
      ),
    );
  }
  const elasticsearch = clients.elasticsearch;
  if (elasticsearch) {
    checks.push(
      probes.elasticsearch(elasticsearch, 5000).then(
        () => undefined,
        (error: unknown) => {
          const status = error instanceof esErrors.ResponseError ? error.statusCode : undefined;
          const problem = status === 401 || status === 403 ? 'authentication failed' : problemOf(error, /security_exception|unable to authenticate/i);
          return new ConnectionError('elasticsearch', urlWithoutCredentials(config.elasticsearch.url), problem, error);
        },
      ),
    );
  }
  const kafka = clients.kafka;
  if (kafka) {
    checks.push(
      (async () => {
        const admin = kafka.admin();
        try {
          await admin.connect();
          await probes.kafka(admin);
          return undefined;
        } catch (error) {
          return new ConnectionError('kafka', config.kafka.brokers.join(','), problemOf(error, /SASL|Authentication/i), error);
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      })(),
    );
  }
  const failed = (await Promise.all(checks)).filter((error): error is ConnectionError => error !== undefined);
  const refused = failed.find((error) => !error.retriable);
  if (refused) throw refused;
  return failed;
}

/**
 * {@link verifyConnections} for a command that can do nothing without its stores: throws the
 * first one that can't be used, naming it and why (unreachable too). Without it, a wrong Redis
 * password or CA surfaced as ioredis's "Reached the max retries per request limit", no reason.
 * @throws ConnectionError
 */
export async function requireConnections(config: Config, clients: { kafka?: Kafka; elasticsearch?: Client; redis?: RedisClient }): Promise<void> {
  const [unreachable] = await verifyConnections(config, clients);
  if (unreachable) throw unreachable;
}
