import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verifySignature } from '../detectors';

/** One notification as the loopback receiver got it. */
export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
  /** For the webhook path: whether the HMAC signature verified. */
  signature?: string;
  at: number;
}

/**
 * A loopback HTTP receiver standing in for on-call's tools: /webhook (verifies the signature),
 * /slack and /pagerduty. The demo points its destinations at it and prints what arrived.
 */
export async function startAlertReceiver(secret: string): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const path = request.url ?? '/';
      const header = request.headers[SIGNATURE_HEADER.toLowerCase()];
      const signature =
        path === '/webhook' ? (verifySignature(secret, Array.isArray(header) ? header[0] : header, body, Date.now() / 1000).ok ? 'valid' : 'INVALID') : undefined;
      received.push({ path, headers: request.headers, body, json, ...(signature ? { signature } : {}), at: Date.now() });
      response.writeHead(path === '/pagerduty' ? 202 : 200, { 'content-type': 'application/json' });
      response.end('{"status":"ok"}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
