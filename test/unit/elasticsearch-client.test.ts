import { createServer } from 'node:net';
import { createElasticsearch, loadConfig } from '../../platform';

/** A loopback port nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('the Elasticsearch client', () => {
  it('leaves a failed request\'s body as it was: no key-by-key copy of a bulk Buffer, no headers kept', async () => {
    const client = createElasticsearch(loadConfig({ ELASTICSEARCH_URL: `http://127.0.0.1:${await closedPort()}` }));
    const body = Buffer.alloc(64 * 1024, 0x20);
    try {
      const failure = await client.bulk({ body }).then(
        () => undefined,
        (error: unknown) => error as { name?: string; meta?: { meta?: { request?: { params?: Record<string, unknown> }; connection?: unknown } } },
      );
      expect(failure?.name).toBe('ConnectionError');
      const params = failure?.meta?.meta?.request?.params ?? {};
      // The default redaction ('replace') turns the Buffer into an object of one key per byte
      // (seconds of CPU for a 2 MB body); 'remove' keeps the Buffer and drops the headers.
      expect(Buffer.isBuffer(params.body)).toBe(true);
      expect(params).not.toHaveProperty('headers');
      expect(failure?.meta?.meta?.connection).toBeNull();
    } finally {
      await client.close();
    }
  });
});
