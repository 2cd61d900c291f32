import { Kafka, logLevel } from 'kafkajs';
import { createVigil } from '../../app';
import { ConnectionError, StoreUnavailableError, ensureTopicStates } from '../../platform';
import { freePort, isolatedConfig, testLogger } from '../support/harness';

describe('the start check of the stores', () => {
  it('stops the start when Redis refuses the database REDIS_URL names, instead of writing to database 0', async () => {
    // The local Redis has 16 databases: 99 is refused, and ioredis alone would carry on in 0.
    const config = isolatedConfig({ REDIS_URL: 'redis://127.0.0.1:6379/99' });
    const vigil = createVigil(config, { logger: testLogger, http: false });
    let failure: unknown;
    try {
      await vigil.start();
    } catch (error) {
      failure = error;
    } finally {
      await vigil.stop();
    }
    expect(failure).toBeInstanceOf(ConnectionError);
    expect((failure as ConnectionError).service).toBe('redis');
    expect((failure as ConnectionError).retriable).toBe(false);
    expect((failure as Error).message).toMatch(/^redis \(redis:\/\/127\.0\.0\.1:6379\/99\): database refused: ERR DB index is out of range/);
  }, 60_000);

  it('names Kafka and KAFKA_BROKERS when the brokers cannot be reached to check the topics', async () => {
    const port = await freePort();
    const config = isolatedConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
    const kafka = new Kafka({ clientId: 'start-check', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 50 } });
    const failure = await ensureTopicStates(kafka, config).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as Error).message).toMatch(new RegExp(`^kafka: unreachable at 127\\.0\\.0\\.1:${port}, so Vigil's topics could not be checked \\(.*\\); check KAFKA_BROKERS and that Kafka is up$`));
  }, 60_000);
});
