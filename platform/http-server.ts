import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where an HTTP server listens, or was asked to: port 0 means any free port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Starts `server` listening on `at` and resolves with the address it took (the real port when
 * `at.port` is 0). Rejects, rather than leaving an `error` listener behind, when the port is taken.
 */
export async function listenOn(server: Server, at: ListenAddress): Promise<ListenAddress> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return { host: at.host, port };
}

/**
 * Closes `server` and resolves once it has. `drop` says which open connections to end now:
 * `idle` lets requests in hand finish (their work is awaited), `all` ends every connection, for
 * servers whose clients (scrapers with keep-alive) must not hold the shutdown.
 */
export async function closeServer(server: Server, drop: 'idle' | 'all'): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    if (drop === 'all') server.closeAllConnections();
    else server.closeIdleConnections();
  });
}
