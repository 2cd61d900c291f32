import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { exportJsonSchemas } from '../../schemas';

const ROOT = join(__dirname, '..', '..');

/** One import of a source file: `file` relative to the repository, `specifier` as written. */
interface Import {
  file: string;
  specifier: string;
}

/** Every TypeScript source under a folder, subfolders included; compiled output is not source. */
function sourceFiles(folder: string): string[] {
  if (!existsSync(join(ROOT, folder))) return [];
  return readdirSync(join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'dist' || entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

// Static imports and re-exports, side-effect imports, import() and require(): any way in.
const IMPORT = /\b(?:from\s+|import\s*\(\s*|import\s+|require\s*\(\s*)['"]([^'"]+)['"]/g;

function importsOfFile(file: string): Import[] {
  return [...readFileSync(join(ROOT, file), 'utf8').matchAll(IMPORT)].map((match) => ({ file, specifier: match[1] ?? '' }));
}

function importsOf(folder: string): Import[] {
  return sourceFiles(folder).flatMap(importsOfFile);
}

const isRelative = ({ specifier }: Import): boolean => specifier.startsWith('.');
const isBuiltin = (specifier: string): boolean => specifier.startsWith('node:') || builtinModules.includes(specifier);

/** The npm package an import names (`@scope/name` or `name`), without a subpath. */
function packageOf(specifier: string): string {
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}

/** Where a relative import points, relative to the repository and without extension. */
function targetOf({ file, specifier }: Import): string {
  return relative(ROOT, resolve(ROOT, dirname(file), specifier)).split('\\').join('/');
}

/** The source file a relative import loads, or undefined when there is none. */
function fileOf(imported: Import): string | undefined {
  const target = targetOf(imported);
  return [`${target}.ts`, `${target}/index.ts`].find((candidate) => existsSync(join(ROOT, candidate)));
}

const within = (path: string, folder: string): boolean => path === folder || path.startsWith(`${folder}/`);
const show = ({ file, specifier }: Import): string => `${file} -> ${specifier}`;

/**
 * What the producer SDK may load besides its own folder: the event contract and two leaf files of
 * platform/ (the error hierarchy and the backoff). Never the barrels: `schemas/` also holds the
 * Elasticsearch templates, `platform/` the config and pino.
 */
const SDK_CONTRACT = new Set([
  'schemas/envelope.ts',
  'schemas/policy.ts',
  'schemas/invocation.ts',
  'schemas/device.ts',
  'schemas/event.ts',
  'platform/errors.ts',
  'platform/retry.ts',
]);
/** The SDK's only npm dependencies (ingest/sdk/package.json), besides Node's own modules. */
const SDK_PACKAGES = new Set(['kafkajs', 'zod']);
/**
 * Its optional peer dependencies, each with the one file that may load it: a service that does
 * not ask for that entry point neither installs nor loads the package.
 */
const SDK_OPTIONAL_PEERS = new Map([['node-rdkafka', 'ingest/sdk/rdkafka.ts']]);

/** Every file the SDK loads, following relative imports from each of its files, and those imports. */
function sdkClosure(): { files: string[]; imports: Import[] } {
  const files = new Set<string>();
  const imports: Import[] = [];
  const pending = sourceFiles('ingest/sdk');
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const imported of importsOfFile(file)) {
      imports.push(imported);
      const loaded = isRelative(imported) ? fileOf(imported) : undefined;
      if (loaded !== undefined) pending.push(loaded);
    }
  }
  return { files: [...files].sort(), imports };
}

describe('module boundaries', () => {
  it('finds the sources it checks, subfolders included', () => {
    expect(sourceFiles('ingest')).toEqual(expect.arrayContaining(['ingest/index.ts', 'ingest/sdk/index.ts', 'ingest/sdk/emitter.ts']));
    expect(importsOf('ingest/sdk').map(show)).toEqual(expect.arrayContaining(['ingest/sdk/emitter.ts -> ../../schemas/event', 'ingest/sdk/http-middleware.ts -> node:net']));
  });

  it('schemas/ imports nothing but zod and itself', () => {
    const foreign = importsOf('schemas').filter((imported) => (isRelative(imported) ? !within(targetOf(imported), 'schemas') : imported.specifier !== 'zod'));
    expect(foreign.map(show)).toEqual([]);
  });

  it('platform/ imports nothing above it: only itself and schemas/', () => {
    const upward = importsOf('platform').filter(isRelative).filter((imported) => !within(targetOf(imported), 'platform') && !within(targetOf(imported), 'schemas'));
    expect(upward.map(show)).toEqual([]);
  });

  it('the SDK loads only its own files and the contract: nothing of the pipeline, the config or the logger', () => {
    const { files, imports } = sdkClosure();
    const outside = files.filter((file) => !within(file, 'ingest/sdk') && !SDK_CONTRACT.has(file));
    const unresolved = imports.filter((imported) => isRelative(imported) && fileOf(imported) === undefined);
    expect(outside).toEqual([]);
    expect(unresolved.map(show)).toEqual([]);
  });

  it('the SDK needs no package but kafkajs, zod and Node itself: no Elasticsearch, Redis, geoip or pino', () => {
    const { imports } = sdkClosure();
    const foreign = imports.filter(
      (imported) =>
        !isRelative(imported) &&
        !isBuiltin(imported.specifier) &&
        !SDK_PACKAGES.has(packageOf(imported.specifier)) &&
        SDK_OPTIONAL_PEERS.get(packageOf(imported.specifier)) !== imported.file,
    );
    expect(foreign.map(show)).toEqual([]);
  });

  it("the SDK's main entry point never reaches an optional peer's file: importing the SDK loads no native client", () => {
    const reached = new Set<string>();
    const pending = ['ingest/sdk/index.ts'];
    for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
      if (reached.has(file)) continue;
      reached.add(file);
      for (const imported of importsOfFile(file)) {
        const loaded = isRelative(imported) ? fileOf(imported) : undefined;
        if (loaded !== undefined) pending.push(loaded);
      }
    }
    expect(reached).toContain('ingest/sdk/emitter.ts');
    for (const peerFile of SDK_OPTIONAL_PEERS.values()) expect(reached).not.toContain(peerFile);
  });

  it('the SDK package declares exactly those dependencies, and the optional peers as optional', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'ingest', 'sdk', 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual([...SDK_PACKAGES].sort());
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual([...SDK_OPTIONAL_PEERS.keys()].sort());
    for (const peer of SDK_OPTIONAL_PEERS.keys()) expect(manifest.peerDependenciesMeta?.[peer]?.optional).toBe(true);
  });

  it.each([
    ['detectors', ['ingest', 'app', 'scripts', 'bench', 'test']],
    ['ingest', ['app', 'scripts', 'bench', 'test']],
    ['app', ['scripts', 'bench', 'test']],
    ['dashboards', ['ingest', 'detectors', 'app', 'scripts', 'bench', 'test']],
  ] as const)('%s/ imports nothing above it', (folder, above) => {
    const upward = importsOf(folder).filter(isRelative).filter((imported) => above.some((higher) => within(targetOf(imported), higher)));
    expect(upward.map(show)).toEqual([]);
  });

  it('the ingest pipeline reaches other modules, the SDK included, only through their index', () => {
    const deep = importsOf('ingest')
      .filter(({ file }) => !within(file, 'ingest/sdk'))
      .filter(isRelative)
      .filter((imported) => {
        const target = targetOf(imported);
        const foreign = !within(target, 'ingest') || within(target, 'ingest/sdk');
        return foreign && !existsSync(join(ROOT, target, 'index.ts'));
      });
    expect(deep.map(show)).toEqual([]);
  });
});

describe('secrets in logs', () => {
  it('every logger a command or the composition root makes knows the configuration\'s secrets', () => {
    const files = [...sourceFiles('app'), ...sourceFiles('scripts')];
    expect(files.length).toBeGreaterThan(10);
    const calls = files.flatMap((file) => [...readFileSync(join(ROOT, file), 'utf8').matchAll(/createLogger\(\{[^}]*\}\)/g)].map((match) => ({ file, call: match[0] })));
    expect(calls.length).toBeGreaterThan(3);
    expect(calls.filter(({ call }) => !call.includes('secrets:')).map(({ file, call }) => `${file}: ${call}`)).toEqual([]);
  });
});

describe('committed JSON Schemas', () => {
  it.each(Object.entries(exportJsonSchemas()))('schemas/json/%s.schema.json matches the zod contract (run npm run schemas:export)', (name, schema) => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schemas', 'json', `${name}.schema.json`), 'utf8')) as unknown;
    expect(committed).toEqual(schema);
  });
});
