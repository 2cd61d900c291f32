/**
 * Writes what platform/config.ts's settings table documents: `.env.example`, the variables table
 * of docs/configuration.md and the README's configuration table. `npm run config:docs`;
 * test/unit/config.test.ts fails when a file lags behind the table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigTable, renderEnvExample, replaceGeneratedTable } from '../platform';

const ROOT = join(__dirname, '..');
writeFileSync(join(ROOT, '.env.example'), renderEnvExample());
for (const [file, form] of [
  ['docs/configuration.md', 'full'],
  ['README.md', 'short'],
] as const) {
  const path = join(ROOT, file);
  writeFileSync(path, replaceGeneratedTable(readFileSync(path, 'utf8'), renderConfigTable(form)));
}
