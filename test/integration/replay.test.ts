import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../platform';
import { replayDetections } from '../../scripts/replay';

describe('vigil replay over an NDJSON file', () => {
  let folder: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-replay-'));
  });

  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('reports what would fire, leaves no state behind, and gives the same ids twice', async () => {
    const start = Date.parse('2026-03-01T12:00:00Z');
    const lines: string[] = [];
    for (let n = 0; n < 11; n++) {
      lines.push(
        JSON.stringify({
          id: `evt-replay-${n}`,
          schemaVersion: 1,
          family: 'policy',
          time: new Date(start + n * 15_000).toISOString(),
          source: { service: 'edge-gateway-eu', kind: 'gateway' },
          actor: { userId: 'u-replay' },
          client: { ip: '81.2.69.142' },
          policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
        }),
      );
    }
    lines.push('{"this is": "not an event"}', 'not json at all');
    const file = join(folder, 'events.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);

    const first = await replayDetections({ file });
    const second = await replayDetections({ file });
    expect(first.events).toBe(11);
    expect(first.refused).toBe(2);
    expect(first.detections.map((detection) => detection.ruleId)).toEqual(['authn-failures-per-user']);
    expect(first.detections[0]?.reason).toBe('10 failed logins for user u-replay from 1 IP in 2m15s; threshold 10 in 5m.');
    expect(second.detections.map((detection) => detection.id)).toEqual(first.detections.map((detection) => detection.id));

    const redis = new Redis(loadConfig().redis.url);
    try {
      const [, leftovers] = await redis.scan('0', 'MATCH', 'replay-*', 'COUNT', 10_000);
      expect(leftovers).toEqual([]);
    } finally {
      await redis.quit();
    }
  });
});
