import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Integration tests run against the real stack: start it (idempotent; seconds when warm). */
export default function globalSetup(): void {
  const result = spawnSync('bash', [join(__dirname, '..', '..', 'scripts', 'stack.sh'), 'up'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`scripts/stack.sh up failed with exit code ${String(result.status)}`);
}
