import { createServer, type Server } from 'node:http';
import { VigilError, listenOn } from '../../platform';

const SETTINGS = { host: 'VIGIL_HTTP_HOST', port: 'VIGIL_HTTP_PORT' };

function close(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}

describe('listenOn', () => {
  it('takes a free port and says which', async () => {
    const server = createServer();
    try {
      const address = await listenOn(server, { host: '127.0.0.1', port: 0 }, SETTINGS);
      expect(address.port).toBeGreaterThan(0);
      expect(server.listenerCount('error')).toBe(0);
    } finally {
      await close(server);
    }
  });

  it('names the port setting when another process holds the port', async () => {
    const holder = createServer();
    const second = createServer();
    try {
      const { port } = await listenOn(holder, { host: '127.0.0.1', port: 0 }, SETTINGS);
      const failure = await listenOn(second, { host: '127.0.0.1', port }, SETTINGS).then(() => undefined, (error: unknown) => error);
      expect(failure).toBeInstanceOf(VigilError);
      expect((failure as VigilError).message).toBe(`VIGIL_HTTP_PORT: 127.0.0.1:${port} is in use by another process (EADDRINUSE)`);
      expect((failure as VigilError).retriable).toBe(false);
    } finally {
      await close(second);
      await close(holder);
    }
  });

  it('names the host setting when the address is not this host\'s', async () => {
    const server = createServer();
    try {
      // TEST-NET-1 (RFC 5737): never an address of this host.
      const failure = await listenOn(server, { host: '192.0.2.1', port: 0 }, SETTINGS).then(() => undefined, (error: unknown) => error);
      expect((failure as Error).message).toBe('VIGIL_HTTP_HOST: 192.0.2.1 is not an address of this host (EADDRNOTAVAIL)');
    } finally {
      await close(server);
    }
  });
});
