import { writeFileSync } from 'node:fs';
import { KibanaError, ids, installDashboards, savedObjects, toNdjson, type KibanaTarget } from '../dashboards';
import { urlWithoutCredentials } from '../platform';

export const DASHBOARDS_USAGE = `usage: vigil dashboards install --kibana URL [--space ID] [--api-key KEY | --user U --password P]
       vigil dashboards export [--out FILE]

The key and password may come from KIBANA_API_KEY and KIBANA_PASSWORD instead (KIBANA_USERNAME
for the user), which keeps them off the command line, where ps and the shell's history show them.
A Kibana whose certificate a private CA signed: NODE_EXTRA_CA_CERTS=/path/to/ca.pem.`;

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
    console.error(DASHBOARDS_USAGE);
    return 2;
  }
  const given = option(args, '--kibana');
  const space = option(args, '--space');
  if (given === undefined || !/^https?:\/\/[^/]/.test(given)) {
    console.error(`vigil dashboards install: --kibana must be Kibana's http(s) URL${given === undefined ? '' : `, not "${urlWithoutCredentials(given)}"`}\n${DASHBOARDS_USAGE}`);
    return 2;
  }
  // A user and password written into the URL (https://elastic:pw@kibana:5601) go as basic
  // authentication: fetch refuses a URL holding credentials, and its error quoted them.
  let inUrl: { user?: string; password?: string } | undefined;
  let url = given;
  try {
    const parsed = new URL(given);
    if (parsed.username !== '' || parsed.password !== '') {
      // A part left empty (`https://elastic@kibana`, `https://:pw@kibana`) is not given: the
      // flags or the environment may give it.
      inUrl = { ...(parsed.username === '' ? {} : { user: decodeURIComponent(parsed.username) }), ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }) };
    }
    url = urlWithoutCredentials(given);
  } catch {
    console.error(`vigil dashboards install: --kibana is not a URL: "${urlWithoutCredentials(given)}"\n${DASHBOARDS_USAGE}`);
    return 2;
  }
  const env = process.env;
  const flagged = { apiKey: option(args, '--api-key'), user: option(args, '--user'), password: option(args, '--password') };
  if (inUrl?.user !== undefined && (flagged.apiKey !== undefined || flagged.user !== undefined)) {
    console.error(`vigil dashboards install: the --kibana URL holds a user and password: give them there or with --api-key / --user, not both\n${DASHBOARDS_USAGE}`);
    return 2;
  }
  // The command line first, then the URL, then the environment (`--user elastic` with the
  // password in KIBANA_PASSWORD keeps it off the command line).
  const apiKey = flagged.apiKey ?? (flagged.user === undefined && inUrl?.user === undefined ? nonEmpty(env.KIBANA_API_KEY) : undefined);
  const user = flagged.user ?? inUrl?.user ?? (apiKey === undefined ? nonEmpty(env.KIBANA_USERNAME) : undefined);
  const password = flagged.password ?? inUrl?.password ?? (user !== undefined && apiKey === undefined ? nonEmpty(env.KIBANA_PASSWORD) : undefined);
  if (apiKey !== undefined && user !== undefined) {
    console.error(`vigil dashboards install: give --api-key or --user, not both\n${DASHBOARDS_USAGE}`);
    return 2;
  }
  if ((user === undefined) !== (password === undefined)) {
    console.error(`vigil dashboards install: --user and --password (or KIBANA_PASSWORD) go together\n${DASHBOARDS_USAGE}`);
    return 2;
  }
  const target: KibanaTarget = { url, ...(space ? { space } : {}), ...(apiKey ? { apiKey } : {}), ...(user ? { user, password } : {}) };
  if ((apiKey !== undefined || user !== undefined) && url.startsWith('http://') && !isLoopback(url)) {
    console.error(`vigil dashboards install: warning: the credentials go to ${url} over plain http, readable on the way; use Kibana's https URL`);
  }
  try {
    const result = await installDashboards(target, ndjson);
    console.log(`installed ${result.successCount} saved objects (index prefix ${prefix}) into Kibana ${result.kibanaVersion} at ${url}${space ? ` (space ${space})` : ''}`);
    if (result.renamed !== undefined) {
      // The dashboards work (Kibana rewrites their references); the alert links name the ids.
      const search = result.renamed.find((object) => object.type === 'search' && object.id === ids.search(prefix, 'open-alerts'));
      console.error(
        `vigil dashboards install: warning: Kibana gave ${result.renamed.length} objects new ids${space ? ` in space ${space}` : ''}, as it does when the same ids are in another space. ` +
          `The dashboards work, but notifications' "Open in Kibana" links name ${ids.search(prefix, 'open-alerts')}${search ? `, which here is ${search.destinationId}` : ''}: ` +
          'they open only in the space these objects were installed into first: point VIGIL_KIBANA_URL there',
      );
    }
    return 0;
  } catch (error) {
    if (!(error instanceof KibanaError)) throw error;
    console.error(`vigil dashboards install: ${error.message}`);
    return 1;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Whether a URL's host is this machine (plain http there crosses no network). */
function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}
