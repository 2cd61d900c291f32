import { z } from 'zod';
import { VigilError } from '../../platform';
import { KIBANA_VERSION } from './saved-objects';

/** Why installing into Kibana failed: `kibana_unreachable`, `kibana_version`, `kibana_auth`, `kibana_import`. */
export class KibanaError extends VigilError {
  constructor(message: string, code: 'kibana_unreachable' | 'kibana_version' | 'kibana_auth' | 'kibana_import', retriable: boolean, cause?: unknown) {
    super(message, { code, retriable, cause });
  }
}

/** Where and as whom to install. */
export interface KibanaTarget {
  /** Kibana's base URL, e.g. `http://127.0.0.1:5601`. */
  url: string;
  /** A Kibana space id; the default space when absent. */
  space?: string;
  /** An API key (the base64 `id:key` Kibana shows), sent as `Authorization: ApiKey ...`. */
  apiKey?: string;
  /** Basic authentication. */
  user?: string;
  password?: string;
}

/** What an import did, from Kibana's answer. */
export interface ImportResult {
  successCount: number;
  /** The Kibana version that answered /api/status. */
  kibanaVersion: string;
  /**
   * Objects Kibana imported under another id (`destinationId`): it does so in a second space when
   * the same ids are in another one (saved object ids are unique across spaces since 8.0).
   * Absent when every object kept its id.
   */
  renamed?: { type: string; id: string; destinationId: string }[];
}

const statusSchema = z.looseObject({ version: z.looseObject({ number: z.string() }) });
const importSchema = z.looseObject({
  success: z.boolean(),
  successCount: z.number().int(),
  successResults: z.array(z.looseObject({ id: z.string(), type: z.string(), destinationId: z.string().optional() })).optional(),
  errors: z.array(z.looseObject({ id: z.string(), type: z.string(), error: z.looseObject({ type: z.string() }) })).optional(),
});

/** Node's TLS codes for a certificate it does not trust, or that names another host. */
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function headers(target: KibanaTarget): Record<string, string> {
  const result: Record<string, string> = { 'kbn-xsrf': 'vigil' };
  if (target.apiKey !== undefined) result.authorization = `ApiKey ${target.apiKey}`;
  else if (target.user !== undefined) result.authorization = `Basic ${Buffer.from(`${target.user}:${target.password ?? ''}`).toString('base64')}`;
  return result;
}

function base(target: KibanaTarget): string {
  const root = target.url.replace(/\/+$/, '');
  return target.space === undefined || target.space === 'default' ? root : `${root}/s/${encodeURIComponent(target.space)}`;
}

async function call(target: KibanaTarget, path: string, init: RequestInit, what: string): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(`${base(target)}${path}`, { ...init, headers: { ...headers(target), ...(init.headers as Record<string, string> | undefined) } });
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) {
      throw new KibanaError(
        `Kibana's certificate at ${target.url} is not trusted (${code}) while ${what}: if a private CA signed it, run with NODE_EXTRA_CA_CERTS=/path/to/ca.pem; if it names another host, use the name it was issued for in --kibana`,
        'kibana_unreachable',
        false,
        error,
      );
    }
    throw new KibanaError(`cannot reach Kibana at ${target.url} (${code ?? (error as Error).message}) while ${what}: check --kibana`, 'kibana_unreachable', true, error);
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML page): kept as text for the message.
  }
  if (response.status === 401 || response.status === 403) {
    const detail = typeof body === 'object' && body !== null && 'message' in body ? String((body).message) : text.slice(0, 200);
    throw new KibanaError(
      `Kibana at ${target.url} refused the credentials while ${what}: HTTP ${response.status} ${response.status === 401 ? 'Unauthorized (wrong or missing --api-key / --user and --password)' : 'Forbidden (the user or key lacks the saved objects privileges of this space)'}: ${detail}`,
      'kibana_auth',
      false,
    );
  }
  if (response.status === 404 && target.space !== undefined && path.startsWith('/api/saved_objects')) {
    throw new KibanaError(`Kibana at ${target.url} has no space "${target.space}" (HTTP 404 while ${what}): create it or check --space`, 'kibana_import', false);
  }
  if (path === '/api/status' && (response.status === 400 || response.status === 404)) {
    throw new KibanaError(`${target.url}/api/status answered HTTP ${response.status}, as Kibana never does: is --kibana Kibana's URL (not Elasticsearch's)? ${text.slice(0, 200)}`, 'kibana_version', false);
  }
  if (response.status >= 300) {
    throw new KibanaError(`Kibana at ${target.url} answered HTTP ${response.status} while ${what}: ${text.slice(0, 300)}`, 'kibana_import', response.status >= 500 || response.status === 429);
  }
  return { status: response.status, body };
}

/**
 * Asks Kibana its version (/api/status) and refuses a major version other than the one the
 * objects are written for: an older Kibana can't read newer saved objects, and a newer major
 * may have dropped what they use.
 */
export async function checkKibanaVersion(target: KibanaTarget): Promise<string> {
  const { body } = await call(target, '/api/status', { method: 'GET' }, 'reading /api/status');
  const parsed = statusSchema.safeParse(body);
  if (!parsed.success) throw new KibanaError(`${target.url}/api/status did not answer as Kibana does (no version.number): is --kibana Kibana's URL?`, 'kibana_version', false);
  const version = parsed.data.version.number;
  const major = (text: string): string => text.split('.')[0] ?? '';
  if (major(version) !== major(KIBANA_VERSION)) {
    throw new KibanaError(`Kibana at ${target.url} is version ${version}; Vigil's dashboards are for Kibana ${KIBANA_VERSION} (major ${major(KIBANA_VERSION)}): install a Kibana ${major(KIBANA_VERSION)}.x matching Elasticsearch`, 'kibana_version', false);
  }
  return version;
}

/**
 * Imports the NDJSON through Kibana's saved objects import API with `overwrite=true`, so a second
 * run replaces the objects with the same ids (idempotent) instead of failing on conflicts.
 */
export async function installDashboards(target: KibanaTarget, ndjson: string): Promise<ImportResult> {
  const kibanaVersion = await checkKibanaVersion(target);
  const form = new FormData();
  form.append('file', new Blob([ndjson], { type: 'application/ndjson' }), 'vigil.ndjson');
  const { body } = await call(target, '/api/saved_objects/_import?overwrite=true', { method: 'POST', body: form }, 'importing the saved objects');
  const parsed = importSchema.safeParse(body);
  if (!parsed.success) throw new KibanaError(`Kibana at ${target.url} answered the import with something that is not an import result: ${JSON.stringify(body).slice(0, 300)}`, 'kibana_import', false);
  if (!parsed.data.success) {
    const errors = (parsed.data.errors ?? []).map((error) => `${error.type} ${error.id}: ${error.error.type}`);
    throw new KibanaError(`Kibana at ${target.url} refused ${errors.length} of the objects: ${errors.join('; ')}`, 'kibana_import', false);
  }
  const renamed = (parsed.data.successResults ?? []).flatMap(({ type, id, destinationId }) => (destinationId !== undefined && destinationId !== id ? [{ type, id, destinationId }] : []));
  return { successCount: parsed.data.successCount, kibanaVersion, ...(renamed.length > 0 ? { renamed } : {}) };
}
