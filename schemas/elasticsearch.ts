import type { Family } from './envelope';

/**
 * The Elasticsearch side of the contract: the document an event becomes (ECS names where ECS has
 * them, `vigil.*` for the rest) and the index templates that map it. Only field types of the
 * core server (keyword, text, date, ip, geo_point, long, float, boolean, object), so the same
 * templates work on the integ-test distribution and a full Elasticsearch.
 */

/** Geo fields as they land in `source.geo`. */
export interface GeoDocument {
  country_iso_code?: string;
  city_name?: string;
  region_iso_code?: string;
  timezone?: string;
  location?: { lat: number; lon: number };
}

/** An event as indexed. Optional parts are absent, never null. */
export interface EventDocument {
  '@timestamp': string;
  event: {
    id: string;
    kind: 'event';
    module: 'vigil';
    dataset: `vigil.${Family}`;
    category: string[];
    type: string[];
    action: string;
    outcome: 'success' | 'failure' | 'unknown';
    reason?: string;
    duration?: number;
    ingested: string;
    /** The validated event as JSON: replay and forensics read it back exactly. */
    original: string;
  };
  service: { name: string; type: 'gateway' | 'service'; node?: { name: string }; environment?: string };
  user?: { id: string };
  organization?: { id: string };
  source?: { ip?: string; geo?: GeoDocument };
  user_agent?: { original: string };
  url?: { path: string };
  http?: {
    request?: { method?: string; id?: string; bytes?: number };
    response?: { status_code?: number; bytes?: number };
  };
  trace?: { id: string };
  device?: { id: string };
  labels?: Record<string, string>;
  vigil: {
    schema_version: number;
    family: Family;
    consumer_id?: string;
    session_id?: string;
    group?: string;
    api?: string;
    route?: string;
    upstream_service?: string;
    latency_ms?: number;
    policy?: { kind: string; name: string; outcome: 'pass' | 'fail'; reason?: string; auth_context?: string; scopes?: string[] };
    device?: { type: string; os?: string; fingerprint?: string; action: string };
    /**
     * Where `source.geo` came from, and whether the IP is private/reserved (never looked up);
     * for `geoip`, the database that answered and when its data was built (ISO 8601).
     */
    geo: {
      source: 'geoip' | 'producer' | 'none';
      ip_scope?: 'public' | 'private' | 'reserved';
      accuracy_km?: number;
      database?: string;
      database_build?: string;
    };
    kafka: { topic: string; partition: number; offset: string };
    /**
     * SHA-256 of the validated event as canonical JSON (nothing the pipeline adds): a second
     * event with the same id is a redelivery when it matches, an id conflict when it doesn't.
     */
    content_hash: string;
    /** What correlation attached: the request's policy decisions, the session's device. */
    correlation?: {
      policies?: Record<string, 'pass' | 'fail'>;
      failed_policies?: string[];
      device_id?: string;
      device_age_ms?: number;
      country?: string;
      known_devices?: number;
      from_session?: boolean;
    };
  };
}

const keyword = { type: 'keyword', ignore_above: 1024 } as const;
const date = { type: 'date' } as const;
const long = { type: 'long' } as const;
const float = { type: 'float' } as const;

/** Mappings shared by every event index. `dynamic: strict` turns a drifting document into a loud error. */
export const eventMappings = {
  dynamic: 'strict',
  dynamic_templates: [{ labels_as_keywords: { path_match: 'labels.*', match_mapping_type: 'string', mapping: keyword } }],
  properties: {
    '@timestamp': date,
    event: {
      properties: {
        id: keyword,
        kind: keyword,
        module: keyword,
        dataset: keyword,
        category: keyword,
        type: keyword,
        action: keyword,
        outcome: keyword,
        reason: { type: 'text', fields: { keyword } },
        duration: long,
        ingested: date,
        original: { type: 'keyword', index: false, doc_values: false },
      },
    },
    service: {
      properties: {
        name: keyword,
        type: keyword,
        environment: keyword,
        node: { properties: { name: keyword } },
      },
    },
    user: { properties: { id: keyword } },
    organization: { properties: { id: keyword } },
    source: {
      properties: {
        ip: { type: 'ip' },
        geo: {
          properties: {
            country_iso_code: keyword,
            city_name: keyword,
            region_iso_code: keyword,
            timezone: keyword,
            location: { type: 'geo_point' },
          },
        },
      },
    },
    user_agent: { properties: { original: { type: 'text', fields: { keyword } } } },
    url: { properties: { path: keyword } },
    http: {
      properties: {
        request: { properties: { method: keyword, id: keyword, bytes: long } },
        response: { properties: { status_code: long, bytes: long } },
      },
    },
    trace: { properties: { id: keyword } },
    device: { properties: { id: keyword } },
    labels: { type: 'object', dynamic: true },
    vigil: {
      properties: {
        schema_version: long,
        family: keyword,
        consumer_id: keyword,
        session_id: keyword,
        group: keyword,
        api: keyword,
        route: keyword,
        upstream_service: keyword,
        latency_ms: float,
        policy: {
          properties: {
            kind: keyword,
            name: keyword,
            outcome: keyword,
            reason: keyword,
            auth_context: keyword,
            scopes: keyword,
          },
        },
        device: {
          properties: { type: keyword, os: keyword, fingerprint: keyword, action: keyword },
        },
        geo: { properties: { source: keyword, ip_scope: keyword, accuracy_km: float, database: keyword, database_build: date } },
        kafka: { properties: { topic: keyword, partition: long, offset: keyword } },
        content_hash: keyword,
        correlation: {
          properties: {
            policies: {
              properties: { authn: keyword, authz: keyword, rate_limit: keyword, json_threat: keyword, xml_threat: keyword, custom: keyword },
            },
            failed_policies: keyword,
            device_id: keyword,
            device_age_ms: long,
            country: keyword,
            known_devices: long,
            from_session: { type: 'boolean' },
          },
        },
      },
    },
  },
} as const;

/** Names of Vigil's templates and indices under one prefix. */
export function indexNames(prefix: string): {
  componentTemplate: string;
  indexTemplate: string;
  eventPattern: string;
  eventsOf: (family: Family) => string;
} {
  return {
    componentTemplate: `${prefix}-events-mappings`,
    indexTemplate: `${prefix}-events`,
    eventPattern: `${prefix}-events-*`,
    eventsOf: (family) => `${prefix}-events-${family}-*`,
  };
}

/**
 * The daily index an event goes to, by its event time (UTC): time-based indices let retention
 * drop whole days and keep searches of recent data small.
 */
export function eventIndexName(prefix: string, family: Family, time: string): string {
  const day = new Date(time).toISOString().slice(0, 10).replaceAll('-', '.');
  return `${prefix}-events-${family}-${day}`;
}

/** The composable templates for event indices: the body of each PUT. */
export function eventTemplates(
  prefix: string,
  settings: { shards: number; replicas: number },
): { componentTemplate: { name: string; body: Record<string, unknown> }; indexTemplate: { name: string; body: Record<string, unknown> } } {
  const names = indexNames(prefix);
  return {
    componentTemplate: {
      name: names.componentTemplate,
      body: {
        template: { mappings: eventMappings },
        _meta: { description: 'Vigil security events: ECS names where ECS has them, vigil.* otherwise', schema_version: 1 },
      },
    },
    indexTemplate: {
      name: names.indexTemplate,
      body: {
        index_patterns: [names.eventPattern],
        priority: 200,
        composed_of: [names.componentTemplate],
        template: {
          settings: {
            number_of_shards: settings.shards,
            number_of_replicas: settings.replicas,
            refresh_interval: '1s',
          },
        },
        _meta: { managed_by: 'vigil' },
      },
    },
  };
}
