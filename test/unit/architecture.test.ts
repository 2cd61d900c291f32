import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { exportJsonSchemas } from '../../schemas';

const ROOT = join(__dirname, '..', '..');

/** Every import of every .ts file under a folder (subfolders too, but not dist/ or node_modules/). */
function importsOf(folder: string): { file: string; specifier: string; target: string }[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !/(^|\/)(dist|node_modules)\//.test(file))
    .flatMap((file) =>
      [...readFileSync(join(ROOT, folder, file), 'utf8').matchAll(/(?:from|import\(?) ?'([^']+)'/g)].map((match) => {
        const specifier = match[1] ?? '';
        // Where a relative import lands, from the repository root: 'platform/errors', 'schemas'.
        const target = specifier.startsWith('.') ? relative(ROOT, join(ROOT, folder, dirname(file), specifier)) : specifier;
        return { file: `${folder}/${file}`, specifier, target };
      }),
    );
}

const topOf = (target: string): string => target.split('/')[0] ?? '';
const isRelative = ({ specifier }: { specifier: string }): boolean => specifier.startsWith('.');

describe('module boundaries', () => {
  it('schemas/ imports nothing but zod and itself', () => {
    const foreign = importsOf('schemas').filter((item) => item.specifier !== 'zod' && !(isRelative(item) && topOf(item.target) === 'schemas'));
    expect(foreign).toEqual([]);
  });

  it('platform/ imports only itself and the contract below it (schemas/)', () => {
    const upward = importsOf('platform').filter((item) => isRelative(item) && !['platform', 'schemas'].includes(topOf(item.target)));
    expect(upward).toEqual([]);
  });

  it('detectors/ never imports the consumers or the composition root above it', () => {
    const upward = importsOf('detectors').filter((item) => isRelative(item) && ['ingest', 'app', 'scripts', 'bench', 'test'].includes(topOf(item.target)));
    expect(upward).toEqual([]);
  });

  it('ingest/ never imports the composition root, and reaches other modules only through their index', () => {
    const outside = importsOf('ingest').filter((item) => isRelative(item) && !item.file.startsWith('ingest/sdk/') && topOf(item.target) !== 'ingest');
    expect(outside.filter((item) => topOf(item.target) === 'app' || item.target.includes('/'))).toEqual([]);
  });

  it('the SDK imports only kafkajs, zod, node built-ins, its own files and the contract files it ships with', () => {
    const allowed = new Set(['schemas/envelope', 'schemas/event', 'schemas/policy', 'schemas/invocation', 'schemas/device', 'platform/errors', 'platform/retry']);
    const foreign = importsOf('ingest/sdk').filter((item) => {
      if (!isRelative(item)) return !['kafkajs', 'zod'].includes(item.specifier) && !item.specifier.startsWith('node:');
      return !item.target.startsWith('ingest/sdk') && !allowed.has(item.target);
    });
    expect(foreign).toEqual([]);
    // And what it ships of the contract pulls in nothing else of Vigil's.
    for (const file of allowed) {
      const [folder, name] = file.split('/');
      const reached = importsOf(folder ?? '').filter((item) => item.file === `${file}.ts` && isRelative(item) && !allowed.has(item.target));
      expect({ file, name, reached }).toEqual({ file, name, reached: [] });
    }
  });
});

describe('committed JSON Schemas', () => {
  it.each(Object.entries(exportJsonSchemas()))('schemas/json/%s.schema.json matches the zod contract (run npm run schemas:export)', (name, schema) => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schemas', 'json', `${name}.schema.json`), 'utf8')) as unknown;
    expect(committed).toEqual(schema);
  });
});
