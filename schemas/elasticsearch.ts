import type { Family } from './envelope';

/**
 * The Elasticsearch side of the contract: the document an event becomes (ECS names where ECS has
 * them, `vigil.*` for the rest) and the index templates that map it. Only field types of the
 * core server (keyword, text, date, ip, geo_point, long, float, boolean, object), so the same
 * templates work on the integ-test distribution and a full Elasticsearch.
 */

/** The ECS version Vigil's documents conform to (`ecs.version` on every document). */
export const ECS_VERSION = '9.4.0';

/**
 * Version of Vigil's index templates (the `version` of every template Vigil installs, and
 * `_meta.template_version` of the mappings an index was created with). Raised when a mapping
 * changes in a way an existing index can't take (a field's type): such a field is listed in
 * the template's `retyped` list, new daily indices get the new type, and existing indices keep
 * theirs (see docs/events.md, "Upgrading the templates").
 *
 * 2: ECS conformance (issue 16): `event.reason` and `user_agent.original` keyword,
 * `kibana.alert.reason` keyword; `ecs.*`, `related.*`, `observer.*`, `user.name`,
 * `http.*.body.bytes`, `threat.*` and the Kibana alert fields added.
 *
 * 3: bytes per event (issue 12): `event.original` only with `VIGIL_EVENT_ORIGINAL=on`;
 * `vigil.time`, `vigil.device.client|ip|user_agent|id` added (kept in `_source` only, for
 * replay); `vigil.content_hash` no longer indexed; `vigil.policy.reason` no longer written.
 *
 * 4: event time (issue 15): `vigil.late` added.
 *
 * 5: detections name the endpoint and the consumer as events do: `vigil.api`, `vigil.route`,
 * `vigil.consumer_id` added to the detections template.
 *
 * 6: an alert a silence held back records it: `kibana.alert.maintenance_window_ids` added to the
 * alerts template.
 *
 * 7: the event indices keep label keys past the field limit in `_source`
 * (`index.mapping.total_fields.ignore_dynamic_beyond_limit`); a start leaves a later version's
 * templates in place (platform/elasticsearch/clients.ts).
 */
export const TEMPLATE_VERSION = 7;

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
  ecs: { version: typeof ECS_VERSION };
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
    /**
     * The validated event as JSON, only with `VIGIL_EVENT_ORIGINAL=on` (and in every document
     * indexed before template version 3): replay rebuilds the event from the other fields.
     */
    original?: string;
  };
  service: { name: string; type: 'gateway' | 'service'; node?: { name: string }; environment?: string };
  /** The gateway that observed the event, when the producer is one (`source.kind: gateway`). */
  observer?: { name: string; type: 'gateway' };
  /** `name` only where the producer gives a login name: `actor.userId` of an authn policy event. */
  user?: { id: string; name?: string };
  organization?: { id: string };
  source?: { ip?: string; geo?: GeoDocument };
  user_agent?: { original: string };
  url?: { path: string };
  http?: {
    request?: { method?: string; id?: string; body?: { bytes: number } };
    response?: { status_code?: number; body?: { bytes: number } };
  };
  /** Every IP and user identifier of the event, for pivots across indices. */
  related?: { ip?: string[]; user?: string[] };
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
    /**
     * The event time as the producer wrote it, only when it isn't `@timestamp`'s text (an
     * offset other than `Z`, a fraction other than milliseconds).
     */
    time?: string;
    /**
     * Present (true) when the event arrived more than the allowed lateness behind its partition's
     * event-time clock: indexed and evaluated by `match` rules, but not counted by stateful rules.
     */
    late?: true;
    /** `reason` only in documents indexed before template version 3: it is `event.reason`. */
    policy?: { kind: string; name: string; outcome: 'pass' | 'fail'; reason?: string; auth_context?: string; scopes?: string[] };
    device?: {
      type: string;
      os?: string;
      fingerprint?: string;
      action: string;
      /**
       * Which of `source.ip`, `user_agent.original` and `device.id` (`ip`, `user_agent`, `id`)
       * the event's `client` gave; the others came from its `device`.
       */
      client?: string[];
      /** The device's own value, when `client` gave one too (the ECS field holds client's). */
      ip?: string;
      user_agent?: string;
      id?: string;
    };
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
/** Kept in `_source` for whoever reads the document back, never searched nor aggregated. */
const sourceOnly = { type: 'keyword', index: false, doc_values: false } as const;

/** Mappings shared by every event index. `dynamic: strict` turns a drifting document into a loud error. */
export const eventMappings = {
  dynamic: 'strict',
  dynamic_templates: [{ labels_as_keywords: { path_match: 'labels.*', match_mapping_type: 'string', mapping: keyword } }],
  properties: {
    '@timestamp': date,
    ecs: { properties: { version: keyword } },
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
        reason: keyword,
        duration: long,
        ingested: date,
        original: sourceOnly,
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
    observer: { properties: { name: keyword, type: keyword } },
    user: { properties: { id: keyword, name: keyword } },
    related: { properties: { ip: { type: 'ip' }, user: keyword } },
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
    // ECS: keyword, with a full-text multi-field (match_only_text in ECS; text is its core-type equal).
    user_agent: { properties: { original: { ...keyword, fields: { text: { type: 'text' } } } } },
    url: { properties: { path: keyword } },
    http: {
      properties: {
        // ECS http.*.bytes is body plus headers; producers measure the body only.
        request: { properties: { method: keyword, id: keyword, body: { properties: { bytes: long } } } },
        response: { properties: { status_code: long, body: { properties: { bytes: long } } } },
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
        time: sourceOnly,
        late: { type: 'boolean' },
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
          properties: {
            type: keyword,
            os: keyword,
            fingerprint: keyword,
            action: keyword,
            client: sourceOnly,
            ip: sourceOnly,
            user_agent: sourceOnly,
            id: sourceOnly,
          },
        },
        geo: { properties: { source: keyword, ip_scope: keyword, accuracy_km: float, database: keyword, database_build: date } },
        kafka: { properties: { topic: keyword, partition: long, offset: keyword } },
        // Read back by id (an mget of the 409s), never searched: no index, no doc values.
        content_hash: sourceOnly,
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

/**
 * Fields of the event mappings whose type or indexing changed since version 1: existing indices
 * keep theirs (version 2: `event.reason`, `user_agent.original`; version 3: `vigil.content_hash`,
 * no longer indexed).
 */
export const EVENT_RETYPED_FIELDS = ['event.reason', 'user_agent.original', 'vigil.content_hash'] as const;

/**
 * The mappings to add to indices that already exist: `mappings` without the fields whose type
 * changed (an existing index can't change a field's type, and refuses the whole update if
 * asked to), and without `_meta`, which records the version an index was created with.
 */
export function mappingsForExistingIndices(
  mappings: { dynamic: string; dynamic_templates: readonly object[]; properties: object },
  retyped: readonly string[],
): { dynamic: string; dynamic_templates: object[]; properties: Record<string, unknown> } {
  const properties = structuredClone(mappings.properties) as Record<string, unknown>;
  for (const path of retyped) {
    const parts = path.split('.');
    let node: Record<string, unknown> | undefined = properties;
    for (const part of parts.slice(0, -1)) {
      const child = node?.[part] as { properties?: Record<string, unknown> } | undefined;
      node = child?.properties;
    }
    if (node) delete node[parts[parts.length - 1] ?? ''];
  }
  return { dynamic: mappings.dynamic, dynamic_templates: [...mappings.dynamic_templates], properties };
}

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
  return eventIndexNameAt(prefix, family, new Date(time).toISOString());
}

/**
 * {@link eventIndexName} from the event's UTC timestamp as `Date#toISOString` writes it (the
 * document's `@timestamp`): the ingest consumer has it already, and parsing the time again was
 * 2 % of its busy time.
 */
export function eventIndexNameAt(prefix: string, family: Family, isoTimestamp: string): string {
  // Two dashes in the day at most (an extended year's sign is a third, before them): as replaceAll did.
  const day = isoTimestamp.slice(0, 10).replaceAll('-', '.');
  return `${prefix}-events-${family}-${day}`;
}

/** An index template body as `PUT _index_template` takes it. */
export interface IndexTemplate {
  name: string;
  body: Record<string, unknown>;
}

/**
 * One of Vigil's own index templates (detections, alerts, pipeline metrics): its mappings stamped
 * with the template and ECS versions, and marked as managed by Vigil, so start-up can tell whether
 * the installed one is current.
 */
export function managedTemplate(
  name: string,
  pattern: string,
  mappings: Record<string, unknown>,
  settings: { shards: number; replicas: number; refreshInterval: string },
): IndexTemplate {
  return {
    name,
    body: {
      index_patterns: [pattern],
      priority: 200,
      version: TEMPLATE_VERSION,
      template: {
        settings: { number_of_shards: settings.shards, number_of_replicas: settings.replicas, refresh_interval: settings.refreshInterval },
        mappings: { ...mappings, _meta: { template_version: TEMPLATE_VERSION, ecs_version: ECS_VERSION } },
      },
      _meta: { managed_by: 'vigil', template_version: TEMPLATE_VERSION },
    },
  };
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
        version: TEMPLATE_VERSION,
        template: { mappings: { ...eventMappings, _meta: { template_version: TEMPLATE_VERSION, ecs_version: ECS_VERSION } } },
        _meta: { description: 'Vigil security events: ECS names where ECS has them, vigil.* otherwise', schema_version: 1, template_version: TEMPLATE_VERSION },
      },
    },
    indexTemplate: {
      name: names.indexTemplate,
      body: {
        index_patterns: [names.eventPattern],
        priority: 200,
        version: TEMPLATE_VERSION,
        composed_of: [names.componentTemplate],
        template: {
          settings: {
            number_of_shards: settings.shards,
            number_of_replicas: settings.replicas,
            refresh_interval: '1s',
            // Each label key a producer sends becomes a keyword field of the day's index. Past the
            // index's field limit (1,000), a document with a new key was refused, and every later
            // one of the day with a key not yet mapped: those keys are now kept in `_source` and
            // listed in `_ignored`, and the document is indexed.
            'index.mapping.total_fields.ignore_dynamic_beyond_limit': true,
          },
        },
        _meta: { managed_by: 'vigil', template_version: TEMPLATE_VERSION },
      },
    },
  };
}
