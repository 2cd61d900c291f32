import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VigilError } from './errors';

/** Where an HTTP server listens, or was asked to: port 0 means any free port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Starts `server` listening on `at` and resolves with the address it took (the real port when
 * `at.port` is 0). Rejects, rather than leaving an `error` listener behind, when the port is taken;
 * the error names `setting`, the variable that chose the port (two servers may share a host).
 */
export async function listenOn(server: Server, at: ListenAddress, settings: { host: string; port: string }): Promise<ListenAddress> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      const named =
        error.code === 'EADDRINUSE'
          ? `${settings.port}: ${at.host}:${at.port} is in use by another process`
          : error.code === 'EACCES'
            ? `${settings.port}: ${at.host}:${at.port} may not be taken by this user (ports below 1024 need privileges)`
            : error.code === 'EADDRNOTAVAIL'
              ? `${settings.host}: ${at.host} is not an address of this host`
              : undefined;
      reject(named === undefined ? error : new VigilError(`${named} (${error.code ?? ''})`, { code: 'listen_failed', retriable: false, cause: error }));
    };
    server.once('error', failed);
    server.listen(at.port, at.host, () => {
      server.off('error', failed);
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
