import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { exportJsonSchemas } from '../../schemas';

const ROOT = join(__dirname, '..', '..');

function importsOf(folder: string): { file: string; specifier: string }[] {
  return readdirSync(join(ROOT, folder))
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) =>
      [...readFileSync(join(ROOT, folder, file), 'utf8').matchAll(/from '([^']+)'/g)].map((match) => ({ file: `${folder}/${file}`, specifier: match[1] ?? '' })),
    );
}

describe('module boundaries', () => {
  it('schemas/ imports nothing but zod and itself', () => {
    const foreign = importsOf('schemas').filter(({ specifier }) => specifier !== 'zod' && !/^\.\/[a-z-]+$/.test(specifier));
    expect(foreign).toEqual([]);
  });

  it('platform/ imports no other Vigil module', () => {
    const foreign = importsOf('platform').filter(({ specifier }) => specifier.startsWith('..'));
    expect(foreign).toEqual([]);
  });

  it('ingest/ reaches other modules only through their index', () => {
    const deep = importsOf('ingest').filter(({ specifier }) => specifier.startsWith('../') && specifier.split('/').length > 2);
    expect(deep).toEqual([]);
  });
});

describe('committed JSON Schemas', () => {
  it.each(Object.entries(exportJsonSchemas()))('schemas/json/%s.schema.json matches the zod contract (run npm run schemas:export)', (name, schema) => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schemas', 'json', `${name}.schema.json`), 'utf8')) as unknown;
    expect(committed).toEqual(schema);
  });
});
