import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { KibanaError, checkKibanaVersion, ids, installDashboards, savedObjects, toNdjson } from '../../dashboards';
import { runDashboards } from '../../scripts/dashboards';

/**
 * `vigil dashboards install` against a loopback server that answers as Kibana's documented API
 * does (GET /api/status, POST /api/saved_objects/_import): this tests Vigil's requests and its
 * error handling, not Kibana, which can't run on these machines.
 */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

function fakeKibana(options: { version?: string; status?: number; importAnswer?: (body: string) => unknown } = {}): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const stored = new Map<string, string>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      const answer = (status: number, json: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(json));
      };
      if (options.status !== undefined) return answer(options.status, { statusCode: options.status, error: options.status === 401 ? 'Unauthorized' : 'Forbidden', message: '[security_exception] unable to authenticate' });
      if (request.url === '/api/status' || request.url?.endsWith('/api/status')) return answer(200, { name: 'kibana', version: { number: options.version ?? '9.2.8', build_flavor: 'traditional' }, status: { overall: { level: 'available' } } });
      if (request.method === 'POST' && request.url?.includes('/api/saved_objects/_import')) {
        if (request.headers['kbn-xsrf'] === undefined) return answer(400, { statusCode: 400, error: 'Bad Request', message: 'Request must contain a kbn-xsrf header.' });
        if (options.importAnswer) return answer(200, options.importAnswer(body));
        // As Kibana: without overwrite, an object that exists is a conflict.
        const overwrite = new URL(request.url, 'http://x').searchParams.get('overwrite') === 'true';
        const objects = body.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { type: string; id: string });
        const conflicts = objects.filter((object) => stored.has(`${object.type}:${object.id}`) && !overwrite);
        for (const object of objects) stored.set(`${object.type}:${object.id}`, JSON.stringify(object));
        if (conflicts.length > 0) return answer(200, { success: false, successCount: objects.length - conflicts.length, errors: conflicts.map((object) => ({ ...object, error: { type: 'conflict' } })) });
        return answer(200, { success: true, successCount: objects.length, successResults: objects.map((object) => ({ type: object.type, id: object.id })) });
      }
      answer(404, { statusCode: 404, error: 'Not Found' });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((done) => server.close(() => done())) });
    }),
  );
}

const ndjson = toNdjson(savedObjects('vigil'));

describe('vigil dashboards install (Kibana HTTP API)', () => {
  it('checks the version, then posts the NDJSON as a multipart file with overwrite and kbn-xsrf; a second run succeeds the same', async () => {
    const kibana = await fakeKibana();
    try {
      const first = await installDashboards({ url: kibana.url, apiKey: 'a2V5OnNlY3JldA==' }, ndjson);
      const second = await installDashboards({ url: kibana.url, apiKey: 'a2V5OnNlY3JldA==' }, ndjson);
      const objects = savedObjects('vigil').length;
      expect([first, second]).toStrictEqual([{ successCount: objects, kibanaVersion: '9.2.8' }, { successCount: objects, kibanaVersion: '9.2.8' }]);
      const posts = kibana.seen.filter((request) => request.method === 'POST');
      expect(kibana.seen.map((request) => `${request.method} ${request.url}`)).toStrictEqual(['GET /api/status', 'POST /api/saved_objects/_import?overwrite=true', 'GET /api/status', 'POST /api/saved_objects/_import?overwrite=true']);
      expect(posts[0]?.headers['kbn-xsrf']).toBe('vigil');
      expect(posts[0]?.headers.authorization).toBe('ApiKey a2V5OnNlY3JldA==');
      expect(posts[0]?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
      expect(posts[0]?.body).toContain('Content-Disposition: form-data; name="file"; filename="vigil.ndjson"');
      expect(posts[0]?.body).toContain(ndjson.trimEnd());
    } finally {
      await kibana.close();
    }
  });

  it('sends basic credentials and imports into a space under /s/<space>', async () => {
    const kibana = await fakeKibana();
    try {
      await installDashboards({ url: `${kibana.url}/`, space: 'security', user: 'elastic', password: 'changeme' }, ndjson);
      expect(kibana.seen.map((request) => request.url)).toStrictEqual(['/s/security/api/status', '/s/security/api/saved_objects/_import?overwrite=true']);
      expect(kibana.seen[1]?.headers.authorization).toBe(`Basic ${Buffer.from('elastic:changeme').toString('base64')}`);
    } finally {
      await kibana.close();
    }
  });

  it('names the URL when nothing listens there', async () => {
    const kibana = await fakeKibana();
    await kibana.close();
    const error = await installDashboards({ url: kibana.url }, ndjson).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KibanaError);
    expect((error as KibanaError).message).toBe(`cannot reach Kibana at ${kibana.url} (ECONNREFUSED) while reading /api/status: check --kibana`);
    expect((error as KibanaError).code).toBe('kibana_unreachable');
  });

  it('refuses another major version, naming both, before importing anything', async () => {
    const kibana = await fakeKibana({ version: '8.19.3' });
    try {
      await expect(checkKibanaVersion({ url: kibana.url })).rejects.toThrow(`Kibana at ${kibana.url} is version 8.19.3; Vigil's dashboards are for Kibana 9.2.8 (major 9)`);
      await expect(installDashboards({ url: kibana.url }, ndjson)).rejects.toMatchObject({ code: 'kibana_version' });
      expect(kibana.seen.filter((request) => request.method === 'POST')).toStrictEqual([]);
    } finally {
      await kibana.close();
    }
  });

  it.each([
    [401, 'HTTP 401 Unauthorized (wrong or missing --api-key / --user and --password)'],
    [403, 'HTTP 403 Forbidden (the user or key lacks the saved objects privileges of this space)'],
  ])('names refused credentials (%i)', async (status, expected) => {
    const kibana = await fakeKibana({ status });
    try {
      const error = (await installDashboards({ url: kibana.url, user: 'elastic', password: 'wrong' }, ndjson).catch((caught: unknown) => caught)) as KibanaError;
      expect(error.code).toBe('kibana_auth');
      expect(error.message).toContain(`Kibana at ${kibana.url} refused the credentials while reading /api/status: ${expected}`);
    } finally {
      await kibana.close();
    }
  });

  it('lists the objects Kibana refused', async () => {
    const kibana = await fakeKibana({ importAnswer: () => ({ success: false, successCount: 39, errors: [{ id: 'vigil-lens-x', type: 'lens', error: { type: 'missing_references' } }] }) });
    try {
      await expect(installDashboards({ url: kibana.url }, ndjson)).rejects.toThrow(`Kibana at ${kibana.url} refused 1 of the objects: lens vigil-lens-x: missing_references`);
    } finally {
      await kibana.close();
    }
  });

  it("says when the URL is Elasticsearch's, not Kibana's", async () => {
    const server = createServer((_request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end('{"error":"no handler found for uri [/api/status] and method [GET]"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(checkKibanaVersion({ url })).rejects.toThrow(`${url}/api/status answered HTTP 400, as Kibana never does: is --kibana Kibana's URL (not Elasticsearch's)?`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('says when the URL answers but is not Kibana', async () => {
    const server = createServer((_request, response) => response.end('<html>nginx</html>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(checkKibanaVersion({ url })).rejects.toThrow(`${url}/api/status did not answer as Kibana does (no version.number): is --kibana Kibana's URL?`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('vigil dashboards install: credentials off the command line, and a certificate not trusted', () => {
  const output: string[] = [];
  const saved = { ...process.env };
  beforeEach(() => {
    output.length = 0;
    jest.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void output.push(parts.join(' ')));
    jest.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void output.push(parts.join(' ')));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    for (const name of ['KIBANA_API_KEY', 'KIBANA_USERNAME', 'KIBANA_PASSWORD']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('takes a user and password written into the --kibana URL as basic authentication, and never prints them', async () => {
    const kibana = await fakeKibana();
    try {
      const withCredentials = kibana.url.replace('http://', 'http://elastic:s3cr%40t-pw@');
      await expect(runDashboards(['install', '--kibana', withCredentials], 'vigil')).resolves.toBe(0);
      expect(kibana.seen.map((request) => request.headers.authorization)).toStrictEqual([basic('elastic', 's3cr@t-pw'), basic('elastic', 's3cr@t-pw')]);
      expect(output.join('\n')).toContain(`at ${kibana.url}`);
      expect(output.join('\n')).not.toMatch(/s3cr/);
    } finally {
      await kibana.close();
    }
  });

  it('warns when Kibana gave the objects new ids (a second space), naming the id the alert links use and the one it got', async () => {
    const kibana = await fakeKibana({
      importAnswer: (body) => {
        const objects = body.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { type: string; id: string });
        return { success: true, successCount: objects.length, successResults: objects.map((object) => ({ type: object.type, id: object.id, destinationId: `${object.id}-copy` })) };
      },
    });
    try {
      await expect(runDashboards(['install', '--kibana', kibana.url, '--space', 'security'], 'vigil')).resolves.toBe(0);
      const search = ids.search('vigil', 'open-alerts');
      expect(output.join('\n')).toContain(`warning: Kibana gave ${savedObjects('vigil').length} objects new ids in space security`);
      expect(output.join('\n')).toContain(`links name ${search}, which here is ${search}-copy`);
    } finally {
      await kibana.close();
    }
  });

  it('reads KIBANA_API_KEY, or KIBANA_PASSWORD for --user or KIBANA_USERNAME, when no flag gives them', async () => {
    const kibana = await fakeKibana();
    try {
      process.env.KIBANA_API_KEY = 'a2V5OmZyb20tZW52';
      await expect(runDashboards(['install', '--kibana', kibana.url], 'vigil')).resolves.toBe(0);
      delete process.env.KIBANA_API_KEY;
      process.env.KIBANA_PASSWORD = 'pw-from-env';
      await expect(runDashboards(['install', '--kibana', kibana.url, '--user', 'elastic'], 'vigil')).resolves.toBe(0);
      process.env.KIBANA_USERNAME = 'analyst';
      await expect(runDashboards(['install', '--kibana', kibana.url], 'vigil')).resolves.toBe(0);
      // A URL with the user only: the password from the environment (an empty one was sent).
      await expect(runDashboards(['install', '--kibana', kibana.url.replace('http://', 'http://urluser@')], 'vigil')).resolves.toBe(0);
      // A flag wins over the environment.
      await expect(runDashboards(['install', '--kibana', kibana.url, '--user', 'admin', '--password', 'pw-flag'], 'vigil')).resolves.toBe(0);
      expect([...new Set(kibana.seen.map((request) => request.headers.authorization))]).toStrictEqual(['ApiKey a2V5OmZyb20tZW52', basic('elastic', 'pw-from-env'), basic('analyst', 'pw-from-env'), basic('urluser', 'pw-from-env'), basic('admin', 'pw-flag')]);
    } finally {
      await kibana.close();
    }
  });

  it('refuses credentials both in the URL and in a flag, and warns when they would cross the network over plain http', async () => {
    await expect(runDashboards(['install', '--kibana', 'http://u:p@kibana:5601', '--api-key', 'k'], 'vigil')).resolves.toBe(2);
    expect(output.join('\n')).toContain('the --kibana URL holds a user and password: give them there or with --api-key / --user, not both');
    output.length = 0;
    jest.spyOn(global, 'fetch').mockRejectedValue(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
    await expect(runDashboards(['install', '--kibana', 'http://kibana.example:5601', '--api-key', 'k'], 'vigil')).resolves.toBe(1);
    expect(output[0]).toBe("vigil dashboards install: warning: the credentials go to http://kibana.example:5601 over plain http, readable on the way; use Kibana's https URL");
  });

  it('says a certificate is not trusted, with the way to trust a private CA, instead of "cannot reach Kibana"', async () => {
    jest.spyOn(global, 'fetch').mockRejectedValue(Object.assign(new TypeError('fetch failed'), { cause: { code: 'SELF_SIGNED_CERT_IN_CHAIN' } }));
    await expect(checkKibanaVersion({ url: 'https://kibana.example:5601' })).rejects.toThrow(
      "Kibana's certificate at https://kibana.example:5601 is not trusted (SELF_SIGNED_CERT_IN_CHAIN) while reading /api/status: if a private CA signed it, run with NODE_EXTRA_CA_CERTS=/path/to/ca.pem",
    );
  });
});

describe('vigil dashboards (arguments)', () => {
  const errors: string[] = [];
  beforeEach(() => {
    errors.length = 0;
    jest.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void errors.push(parts.join(' ')));
  });
  afterEach(() => jest.restoreAllMocks());

  it.each([
    [['install'], "--kibana must be Kibana's http(s) URL"],
    [['install', '--kibana', 'localhost:5601'], `--kibana must be Kibana's http(s) URL, not "localhost:5601"`],
    [['install', '--kibana', 'http://k:5601', '--api-key', 'k', '--user', 'u', '--password', 'p'], 'give --api-key or --user, not both'],
    [['install', '--kibana', 'http://k:5601', '--user', 'u'], '--user and --password (or KIBANA_PASSWORD) go together'],
    [['import'], 'usage: vigil dashboards install'],
  ])('refuses %j with exit code 2', async (args, message) => {
    await expect(runDashboards(args, 'vigil')).resolves.toBe(2);
    expect(errors.join('\n')).toContain(message);
  });

  it('exports the NDJSON for the given prefix', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'vigil-dashboards-')), 'out.ndjson');
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    await expect(runDashboards(['export', '--out', out], 'acme')).resolves.toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(toNdjson(savedObjects('acme')));
  });
});
