import type { Condition, DashboardSpec, MapSpec, Metric, PanelSpec, SearchSpec } from './model';

/** Rules of the default rule set, by what they watch (detectors/rules/default). */
const SURGE_RULES = ['request-flood-per-endpoint', 'request-spike-per-consumer', 'distributed-flood-per-endpoint', 'error-surge-per-endpoint', 'latency-surge-per-endpoint'];
const STUFFING_RULES = ['credential-stuffing', 'credential-stuffing-trusted-egress', 'authn-failures-per-ip', 'authn-failures-per-user', 'authn-failures-per-user-slow'];
/** An account taken: failures then a success for one user, or a stuffing run that found a working password. */
const TAKEOVER_RULES = ['account-takeover-sequence', 'credential-stuffing-then-success'];

const invocations: Condition = { field: 'vigil.family', is: ['invocation'] };
const authn: Condition = { field: 'vigil.policy.kind', is: ['authn'] };
const failed: Condition = { field: 'vigil.policy.outcome', is: ['fail'] };
const rules = (ids: readonly string[]): Condition => ({ field: 'rule.id', is: ids });
const OPEN_ALERTS_RANGE = { from: 'now-1y', to: 'now' } as const;

/** Where detections and failed sign-ins are: the located detections over the failed authentications' grid. */
const detectionMap: MapSpec = {
  id: 'detection-locations-map',
  title: 'Detection locations',
  description: 'Failed authentications per map cell (client IP location), and the located detections (where the user was when impossible travel fired).',
  layers: [
    { kind: 'grid', label: 'Failed authentications', view: 'events', geoField: 'source.geo.location', where: [authn, failed], color: '#F5A700', expectData: true },
    {
      kind: 'documents',
      label: 'Located detections',
      view: 'detections',
      geoField: 'vigil.detection.geo.to.location',
      where: [],
      tooltip: ['rule.name', 'user.id', 'vigil.detection.geo.to.city_name', 'vigil.detection.geo.to.country_iso_code', 'vigil.detection.geo.speed_kmh'],
      color: '#BD271E',
      expectData: true,
    },
  ],
};

/** Impossible travel as lines: from where a user was to where they were next. */
const travelMap: MapSpec = {
  id: 'impossible-travel-map',
  title: 'Impossible travel (from → to)',
  description: 'A line per pair of places a user was seen in too far apart for the time between, as wide as the number of detections; the points are where they were next.',
  layers: [
    { kind: 'lines', label: 'Travel pairs', view: 'detections', from: 'vigil.detection.geo.from.location', to: 'vigil.detection.geo.to.location', where: [rules(['impossible-travel'])], metrics: [{ kind: 'max', field: 'vigil.detection.geo.speed_kmh', label: 'Speed (km/h)' }], color: '#BD271E', expectData: true },
    {
      kind: 'documents',
      label: 'Arrivals',
      view: 'detections',
      geoField: 'vigil.detection.geo.to.location',
      where: [rules(['impossible-travel'])],
      tooltip: ['user.id', 'vigil.detection.geo.from.city_name', 'vigil.detection.geo.to.city_name', 'vigil.detection.geo.distance_km', 'vigil.detection.geo.speed_kmh'],
      color: '#6092C0',
      expectData: true,
    },
  ],
};

const securityOverview: DashboardSpec = {
  id: 'security-overview',
  title: 'Vigil: Security overview',
  description: 'Open incidents, detections by rule over time, the entities detections name, and where detections happened.',
  panels: [
    { id: 'open-incidents-by-severity', title: 'Open incidents by severity', description: 'Alerts still active (kibana.alert.status: active), by severity, over the last year whatever the time picker says: an alert is dated by its last detection, and one still open may be older than the dashboard\'s range.', view: 'alerts', chart: 'donut', where: [{ field: 'kibana.alert.status', is: ['active'] }], buckets: [{ kind: 'terms', field: 'kibana.alert.severity', size: 4 }], metrics: [{ kind: 'count', label: 'Incidents' }], expectData: true, width: 16, timeRange: OPEN_ALERTS_RANGE },
    { id: 'detections-by-rule', title: 'Detections by rule over time', description: 'Every detection, stacked by the rule that made it.', view: 'detections', chart: 'bar_stacked', where: [], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'rule.name', size: 20 }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true, width: 32 },
    { id: 'top-users-in-detections', title: 'Top users in detections', description: 'The end users detections are about (user.id of the detection key).', view: 'detections', chart: 'table', where: [{ field: 'user.id', exists: true }], buckets: [{ kind: 'terms', field: 'user.id', size: 10, label: 'User' }], metrics: [{ kind: 'count', label: 'Detections' }, { kind: 'max', field: 'event.severity', label: 'Highest severity (21-99)' }], expectData: true, width: 16 },
    { id: 'top-consumers-in-detections', title: 'Top API consumers in detections', description: 'The API consumers detections are keyed on (vigil.consumer_id: any rule keyed by actor.consumerId, a custom one too).', view: 'detections', chart: 'table', where: [{ field: 'vigil.consumer_id', exists: true }], buckets: [{ kind: 'terms', field: 'vigil.consumer_id', size: 10, label: 'Consumer' }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true, width: 16 },
    { id: 'top-ips-in-detections', title: 'Top source IPs in detections', description: 'The source IPs detections are about.', view: 'detections', chart: 'table', where: [{ field: 'source.ip', exists: true }], buckets: [{ kind: 'terms', field: 'source.ip', size: 10, label: 'Source IP' }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true, width: 16 },
    { id: 'detection-locations', title: 'Detection locations (from → to)', description: 'Countries and cities of the located detections (impossible travel): where the user was, and where they were next.', view: 'detections', chart: 'table', where: [{ field: 'vigil.detection.geo.to.country_iso_code', exists: true }], buckets: [{ kind: 'terms', field: 'vigil.detection.geo.from.country_iso_code', size: 20, label: 'From country' }, { kind: 'terms', field: 'vigil.detection.geo.to.country_iso_code', size: 20, label: 'To country' }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true, width: 48 },
  ],
  maps: [detectionMap],
};

// The two charts with surge markers have no query of their own: Kibana runs a chart's query with
// its markers' on the detections view, where `vigil.family` does not exist, and no marker showed.
// Only invocations carry `vigil.route` and `vigil.latency_ms`, so their buckets are invocations
// alone all the same.
const apiAbuse: DashboardSpec = {
  id: 'api-abuse-dos',
  title: 'Vigil: API abuse and DoS',
  description: 'Per API and route: requests, distinct sources, the 5xx ratio and p95 latency over time, with the surge detections marked.',
  panels: [
    { id: 'requests-per-route', title: 'Requests per API route', description: 'Invocations over time by route template; surge detections are marked.', view: 'events', chart: 'line', where: [], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.route', size: 10 }], metrics: [{ kind: 'count', label: 'Requests' }], annotations: { label: 'Surge detection', where: [rules(SURGE_RULES)] }, expectData: true },
    { id: 'distinct-sources-per-api', title: 'Distinct source IPs per API', description: 'How many client IPs call each API, over time: a distributed flood widens it.', view: 'events', chart: 'line', where: [invocations], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.api', size: 10 }], metrics: [{ kind: 'unique_count', field: 'source.ip', label: 'Distinct source IPs' }], expectData: true },
    { id: 'server-error-ratio', title: '5xx ratio over time', description: 'Share of invocations answered with a 5xx status, over time.', view: 'events', chart: 'bar_percentage_stacked', where: [invocations], buckets: [{ kind: 'date_histogram' }, { kind: 'filters', label: 'Status', filters: [{ label: '5xx', where: [{ field: 'http.response.status_code', atLeast: 500 }] }, { label: 'below 500', where: [{ field: 'http.response.status_code', below: 500 }] }] }], metrics: [{ kind: 'count', label: 'Requests' }], expectData: true },
    { id: 'p95-latency-per-route', title: 'p95 latency per route (ms)', description: '95th percentile of vigil.latency_ms by route, over time; surge detections are marked.', view: 'events', chart: 'line', where: [], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.route', size: 10 }], metrics: [{ kind: 'percentile', field: 'vigil.latency_ms', percentile: 95, label: 'p95 latency (ms)' }], annotations: { label: 'Surge detection', where: [rules(SURGE_RULES)] }, expectData: true },
    { id: 'surge-detections', title: 'Surge detections', description: 'Detections of the surge rules, by rule and endpoint key.', view: 'detections', chart: 'table', where: [rules(SURGE_RULES)], buckets: [{ kind: 'terms', field: 'rule.name', size: 10, label: 'Rule' }, { kind: 'terms', field: 'vigil.detection.key_text', size: 10, label: 'Key' }], metrics: [{ kind: 'count', label: 'Detections' }, { kind: 'max', field: 'vigil.detection.observed_value', label: 'Highest observed value' }], expectData: true },
    { id: 'rate-limit-rejections', title: 'Rate-limit rejections by consumer', description: 'Failed rate_limit policies, by API consumer.', view: 'events', chart: 'bar_horizontal', where: [{ field: 'vigil.policy.kind', is: ['rate_limit'] }, failed], buckets: [{ kind: 'terms', field: 'vigil.consumer_id', size: 10 }], metrics: [{ kind: 'count', label: 'Rejections' }], expectData: true },
  ],
};

const authentication: DashboardSpec = {
  id: 'authentication-takeover',
  title: 'Vigil: Authentication and takeover',
  description: 'AuthN failures by reason and auth context, credential stuffing and brute-force sources, takeover sequences, 2FA bypass attempts.',
  panels: [
    { id: 'authn-failures-by-reason', title: 'AuthN failures by reason', description: 'Failed authn policies over time, by reason.', view: 'events', chart: 'bar_stacked', where: [authn, failed], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'event.reason', size: 10 }], metrics: [{ kind: 'count', label: 'Failures' }], expectData: true },
    { id: 'authn-failures-by-context', title: 'AuthN failures by auth context', description: 'How the failing callers authenticated (basic, api_key, oauth2, jwt, mtls, 2fa).', view: 'events', chart: 'donut', where: [authn, failed], buckets: [{ kind: 'terms', field: 'vigil.policy.auth_context', size: 7 }], metrics: [{ kind: 'count', label: 'Failures' }], expectData: true },
    { id: 'stuffing-sources', title: 'Credential stuffing and brute-force sources', description: 'Source IPs of the stuffing and brute-force detections, with the accounts they tried.', view: 'detections', chart: 'table', where: [rules(STUFFING_RULES)], buckets: [{ kind: 'terms', field: 'rule.name', size: 5, label: 'Rule' }, { kind: 'terms', field: 'vigil.detection.key_text', size: 20, label: 'Key' }], metrics: [{ kind: 'count', label: 'Detections' }, { kind: 'max', field: 'vigil.detection.observed_value', label: 'Highest observed value' }], expectData: true },
    { id: 'failing-ips', title: 'Source IPs with most authN failures', description: 'Failed authn events by source IP and distinct users tried.', view: 'events', chart: 'table', where: [authn, failed], buckets: [{ kind: 'terms', field: 'source.ip', size: 10, label: 'Source IP' }], metrics: [{ kind: 'count', label: 'Failures' }, { kind: 'unique_count', field: 'user.id', label: 'Distinct users' }], expectData: true },
    { id: 'takeover-sequences', title: 'Accounts taken over', description: "Failures then a success for one user (account-takeover-sequence, keyed on the user), and a stuffing run that found a working password (credential-stuffing-then-success, keyed on the IP): the account (user.id) and the address of the sign-in (source.ip).", view: 'detections', chart: 'table', where: [rules(TAKEOVER_RULES)], buckets: [{ kind: 'terms', field: 'rule.name', size: 2, label: 'Rule' }, { kind: 'terms', field: 'user.id', size: 20, label: 'Account' }, { kind: 'terms', field: 'source.ip', size: 5, label: 'Signed in from' }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true },
    { id: 'two-factor-bypass', title: '2FA bypass attempts', description: '2FA-protected APIs reached with basic authentication (basic-auth-on-2fa-resource), over time, by detection key.', view: 'detections', chart: 'bar_stacked', where: [rules(['basic-auth-on-2fa-resource'])], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.detection.key_text', size: 10 }], metrics: [{ kind: 'count', label: 'Attempts' }], expectData: true },
  ],
};

const fraud: DashboardSpec = {
  id: 'fraud-devices-geography',
  title: 'Vigil: Fraud: devices and geography',
  description: 'New devices and countries per user, impossible travel pairs, and device actions.',
  panels: [
    { id: 'new-devices-and-countries', title: 'New devices and countries', description: 'Detections of new-device-for-user and new-country-for-user over time.', view: 'detections', chart: 'bar_stacked', where: [rules(['new-device-for-user', 'new-country-for-user', 'new-device-then-sensitive-write'])], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'rule.name', size: 5 }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true },
    { id: 'impossible-travel-pairs', title: 'Impossible travel pairs', description: 'Users seen in two places too far apart for the time between: from/to country, distance and speed (cities are in the detection: the geo database often knows only the country).', view: 'detections', chart: 'table', where: [rules(['impossible-travel'])], buckets: [{ kind: 'terms', field: 'user.id', size: 20, label: 'User' }, { kind: 'terms', field: 'vigil.detection.geo.from.country_iso_code', size: 5, label: 'From country' }, { kind: 'terms', field: 'vigil.detection.geo.to.country_iso_code', size: 5, label: 'To country' }], metrics: [{ kind: 'max', field: 'vigil.detection.geo.distance_km', label: 'Distance (km)' }, { kind: 'max', field: 'vigil.detection.geo.speed_kmh', label: 'Speed (km/h)' }], expectData: true, width: 48 },
    { id: 'device-events-by-country', title: 'Device events by country', description: 'Device events (logins, transactions, ...) by the country of the IP or the producer.', view: 'events', chart: 'bar_horizontal', where: [{ field: 'vigil.family', is: ['device'] }], buckets: [{ kind: 'terms', field: 'source.geo.country_iso_code', size: 15 }], metrics: [{ kind: 'count', label: 'Device events' }], expectData: true },
    { id: 'device-actions', title: 'Device actions by device type', description: 'What users did on their devices, by device type.', view: 'events', chart: 'bar_stacked', where: [{ field: 'vigil.family', is: ['device'] }], buckets: [{ kind: 'terms', field: 'vigil.device.action', size: 7 }, { kind: 'terms', field: 'vigil.device.type', size: 6 }], metrics: [{ kind: 'count', label: 'Device events' }], expectData: true },
    { id: 'risk-crossings', title: 'Entities over their risk threshold', description: 'risk-threshold detections (docs/risk.md): each user, IP or consumer whose combined risk from low signals crossed VIGIL_RISK_THRESHOLD, with its score at the crossing; open one in Discover for the detections that added up (vigil.detection.event_ids).', view: 'detections', chart: 'table', where: [rules(['risk-threshold'])], buckets: [{ kind: 'terms', field: 'vigil.detection.key_text', size: 20, label: 'Entity' }], metrics: [{ kind: 'max', field: 'vigil.detection.observed_value', label: 'Score at crossing' }, { kind: 'count', label: 'Crossings' }], expectData: false, width: 48 },
    { id: 'risk-per-user', title: 'Detections per user, by severity', description: 'Each user\'s detections and the highest event.risk_score among them: the detection\'s severity as ECS scores it (21-99), not the risk scorer\'s score, which is the panel of entities over their risk threshold.', view: 'detections', chart: 'table', where: [{ field: 'user.id', exists: true }], buckets: [{ kind: 'terms', field: 'user.id', size: 20, label: 'User' }], metrics: [{ kind: 'max', field: 'event.risk_score', label: 'Highest severity score (21-99)' }, { kind: 'count', label: 'Detections' }], expectData: true, width: 48 },
  ],
  maps: [travelMap],
};

/** Pipeline metric documents of one kind (schemas/pipeline.ts): each counts one interval of one Vigil process. */
const pipelineMetric = (...metrics: readonly string[]): Condition => ({ field: 'vigil.pipeline.metric', is: metrics });
/** The sum of the intervals' deltas: what happened in the time range, across restarts and instances. */
const counted = (label: string): Metric => ({ kind: 'sum', field: 'vigil.pipeline.count', label });

const pipelineHealth: DashboardSpec = {
  id: 'pipeline-health',
  title: 'Vigil: Pipeline health',
  description: 'Events in and indexed per family, dead letters by reason, alert changes, notifications by destination and outcome (from the pipeline metrics every Vigil process writes), geo coverage, detections and alerts.',
  panels: [
    { id: 'events-in-and-indexed', title: 'Events in and indexed per family', description: 'Messages consumed from each family\'s topic (events_in) and events indexed (events_indexed), summed over the pipeline metrics of every instance; the difference is dead letters and redeliveries.', view: 'pipeline', chart: 'table', where: [pipelineMetric('events_in', 'events_indexed')], buckets: [{ kind: 'terms', field: 'vigil.pipeline.family', size: 3, label: 'Family' }, { kind: 'terms', field: 'vigil.pipeline.metric', size: 2, label: 'In / indexed' }], metrics: [counted('Events')], expectData: true },
    { id: 'dead-letters-by-reason', title: 'Dead letters by reason', description: 'Messages the ingest pipeline sent to the dead-letter topic over time, by reason code (not_json, schema_invalid, too_large, ...); read them with `vigil deadletters list`. The records vigil adapt refuses (adapter_unparseable, adapter_unmapped) are not counted here: see its /metrics (vigil_adapt_records_refused_total) or `vigil deadletters list`.', view: 'pipeline', chart: 'bar_stacked', where: [pipelineMetric('dead_letters')], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.pipeline.reason', size: 12 }], metrics: [counted('Dead letters')], expectData: true },
    { id: 'alert-changes', title: 'Alerts opened, escalated and resolved', description: 'Alert changes over time, as the alerter made them.', view: 'pipeline', chart: 'bar_stacked', where: [pipelineMetric('alerts')], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.pipeline.change', size: 3 }], metrics: [counted('Alert changes')], expectData: true },
    { id: 'notifications-by-outcome', title: 'Notifications by destination and outcome', description: 'Notification deliveries per destination: sent, retried (a 429/5xx or no answer, tried again) and failed (given up on: in the notification dead-letter topic).', view: 'pipeline', chart: 'bar_stacked', where: [pipelineMetric('notifications')], buckets: [{ kind: 'terms', field: 'vigil.pipeline.destination', size: 10, label: 'Destination' }, { kind: 'terms', field: 'vigil.pipeline.outcome', size: 3, label: 'Outcome' }], metrics: [counted('Notifications')], expectData: true },
    { id: 'events-per-family', title: 'Events indexed per family', description: 'Indexed events over time by family (policy, invocation, device).', view: 'events', chart: 'bar_stacked', where: [], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.family', size: 3 }], metrics: [{ kind: 'count', label: 'Events' }], expectData: true },
    { id: 'events-per-source', title: 'Events per producing service', description: 'Indexed events by the service or gateway that sent them.', view: 'events', chart: 'bar_horizontal', where: [], buckets: [{ kind: 'terms', field: 'service.name', size: 15 }], metrics: [{ kind: 'count', label: 'Events' }], expectData: true },
    { id: 'geo-coverage', title: 'Geo enrichment coverage', description: 'Where each event location came from (geoip, producer, none) and the IP scope.', view: 'events', chart: 'bar_stacked', where: [], buckets: [{ kind: 'terms', field: 'vigil.geo.source', size: 3 }, { kind: 'terms', field: 'vigil.geo.ip_scope', size: 3 }], metrics: [{ kind: 'count', label: 'Events' }], expectData: true },
    { id: 'late-events', title: 'Late events by family', description: 'Events that arrived more than VIGIL_ALLOWED_LATENESS_MS behind their partition\'s event-time clock (vigil.late): indexed and evaluated by match rules, but not counted by the stateful rules (docs/event-time.md). None is normal; a steady trickle means a producer writes a partition out of order.', view: 'events', chart: 'bar_stacked', where: [{ field: 'vigil.late', is: [true] }], buckets: [{ kind: 'date_histogram' }, { kind: 'terms', field: 'vigil.family', size: 3 }], metrics: [{ kind: 'count', label: 'Late events' }], expectData: true },
    { id: 'detections-degraded', title: 'Detections made with degraded state', description: 'Detections by whether rule state was reachable (vigil.detection.degraded).', view: 'detections', chart: 'donut', where: [], buckets: [{ kind: 'terms', field: 'vigil.detection.degraded', size: 2 }], metrics: [{ kind: 'count', label: 'Detections' }], expectData: true },
    { id: 'alerts-by-outcome', title: 'Alerts by status', description: 'Alerts by status (active, recovered) and severity.', view: 'alerts', chart: 'bar_stacked', where: [], buckets: [{ kind: 'terms', field: 'kibana.alert.status', size: 2 }, { kind: 'terms', field: 'kibana.alert.severity', size: 4 }], metrics: [{ kind: 'count', label: 'Alerts' }], expectData: true },
    { id: 'alert-grouping', title: 'Detections grouped per alert', description: 'Detections folded into each alert and how many caused no notification of their own.', view: 'alerts', chart: 'table', where: [], buckets: [{ kind: 'terms', field: 'vigil.alert.title', size: 20, label: 'Alert' }, { kind: 'terms', field: 'kibana.alert.uuid', size: 5, label: 'Incident' }], metrics: [{ kind: 'max', field: 'vigil.alert.count', label: 'Detections' }, { kind: 'max', field: 'vigil.alert.suppressed', label: 'Suppressed notifications' }], expectData: true, width: 48 },
  ],
};

/** Vigil's dashboards, in the order Kibana lists them. */
export const DASHBOARDS: readonly DashboardSpec[] = [securityOverview, apiAbuse, authentication, fraud, pipelineHealth];

/** Saved searches an analyst starts from. */
export const SEARCHES: readonly SearchSpec[] = [
  {
    id: 'why-did-this-fire',
    title: 'Vigil: why did this fire? (a detection\'s events)',
    description: 'The events behind one detection: replace DETECTION_EVENT_IDS with the values of the detection\'s vigil.detection.event_ids (event.id : ("a" or "b")).',
    view: 'events',
    // A detection's events may be days old: Discover's default range (15 minutes) would find none.
    timeRange: { from: 'now-30d', to: 'now' },
    query: 'event.id : ("DETECTION_EVENT_IDS")',
    columns: ['event.action', 'event.outcome', 'event.reason', 'user.id', 'source.ip', 'vigil.api', 'url.path', 'vigil.policy.name'],
    sort: [['@timestamp', 'asc']],
  },
  {
    id: 'detections',
    title: 'Vigil: detections',
    description: 'Every detection with its sentence, rule, key and the event ids behind it (open one, then use "why did this fire?").',
    view: 'detections',
    query: '',
    columns: ['rule.name', 'vigil.detection.severity', 'message', 'vigil.detection.key_text', 'vigil.detection.event_ids'],
    sort: [['@timestamp', 'desc']],
  },
  {
    id: 'open-alerts',
    title: 'Vigil: open alerts',
    description: 'Alerts still active, newest first, with the detections behind each (the last year: an alert still open may have had its last detection long ago).',
    view: 'alerts',
    timeRange: OPEN_ALERTS_RANGE,
    query: 'kibana.alert.status : "active"',
    columns: ['kibana.alert.severity', 'vigil.alert.title', 'vigil.alert.count', 'vigil.alert.rules', 'vigil.alert.detections'],
    sort: [['@timestamp', 'desc']],
  },
];

/** Every map of every dashboard. */
export function allMaps(): MapSpec[] {
  return DASHBOARDS.flatMap((dashboard) => dashboard.maps ?? []);
}

/** Every panel of every dashboard. */
export function allPanels(): PanelSpec[] {
  return DASHBOARDS.flatMap((dashboard) => dashboard.panels);
}
