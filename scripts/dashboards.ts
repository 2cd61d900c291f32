import { writeFileSync } from 'node:fs';
import { KibanaError, installDashboards, savedObjects, toNdjson, type KibanaTarget } from '../dashboards';

const USAGE = `usage: vigil dashboards install --kibana URL [--space ID] [--api-key KEY | --user U --password P]
       vigil dashboards export [--out FILE]`;

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

/**
 * `vigil dashboards install|export`: the saved objects for the configured index prefix, imported
 * into Kibana (overwrite, so a re-run replaces them) or written as NDJSON. Returns the exit code.
 */
export async function runDashboards(args: readonly string[], prefix: string): Promise<number> {
  const [sub] = args;
  const ndjson = toNdjson(savedObjects(prefix));
  if (sub === 'export') {
    const out = option(args, '--out');
    if (out === undefined) process.stdout.write(ndjson);
    else {
      writeFileSync(out, ndjson);
      console.log(`wrote ${ndjson.trimEnd().split('\n').length} saved objects (index prefix ${prefix}) to ${out}`);
    }
    return 0;
  }
  if (sub !== 'install') {
    console.error(USAGE);
    return 2;
  }
  const url = option(args, '--kibana');
  const apiKey = option(args, '--api-key');
  const user = option(args, '--user');
  const password = option(args, '--password');
  const space = option(args, '--space');
  if (url === undefined || !/^https?:\/\/[^/]/.test(url)) {
    console.error(`vigil dashboards install: --kibana must be Kibana's http(s) URL${url === undefined ? '' : `, not "${url}"`}\n${USAGE}`);
    return 2;
  }
  if (apiKey !== undefined && user !== undefined) {
    console.error(`vigil dashboards install: give --api-key or --user, not both\n${USAGE}`);
    return 2;
  }
  if ((user === undefined) !== (password === undefined)) {
    console.error(`vigil dashboards install: --user and --password go together\n${USAGE}`);
    return 2;
  }
  const target: KibanaTarget = { url, ...(space ? { space } : {}), ...(apiKey ? { apiKey } : {}), ...(user ? { user, password } : {}) };
  try {
    const result = await installDashboards(target, ndjson);
    console.log(`installed ${result.successCount} saved objects (index prefix ${prefix}) into Kibana ${result.kibanaVersion} at ${url}${space ? ` (space ${space})` : ''}`);
    return 0;
  } catch (error) {
    if (!(error instanceof KibanaError)) throw error;
    console.error(`vigil dashboards install: ${error.message}`);
    return 1;
  }
}
