/** What `vigil report` reads from Elasticsearch (scripts/report.ts) and renders (scripts/report-html.ts). */

/** A time range as absolute instants. */
export interface ReportRange {
  from: Date;
  to: Date;
}

/** One detection behind an incident: the evidence an analyst reads. */
export interface ReportEvidence {
  id: string;
  time: string;
  ruleId: string;
  ruleName: string;
  severity: string;
  sentence: string;
  observedValue?: number;
  threshold?: number;
  windowStart?: string;
  windowEnd?: string;
  key: Record<string, string>;
  distinctField?: string;
  distinctValues: string[];
  eventIds: string[];
}

/** An incident: one alert and the detections it grouped. */
export interface ReportIncident {
  id: string;
  title: string;
  severity: string;
  status: string;
  start: string;
  end?: string;
  lastDetected: string;
  count: number;
  rules: string[];
  sentence: string;
  key: Record<string, string>;
  /** The alert's newest detections that are still in the detections indices, newest last. */
  evidence: ReportEvidence[];
}

/** Per-minute traffic of one endpoint around a DoS incident. */
export interface ReportDosIncident {
  alertId: string;
  title: string;
  api: string;
  route: string;
  start: string;
  buckets: string[];
  requests: number[];
  errors: number[];
  /** p95 latency in ms per minute; null for a minute without requests. */
  p95LatencyMs: (number | null)[];
  sources: number[];
  /** When the last minute is cut short (the chart's end is not on a minute): the time it runs to (its count is of part of a minute). */
  lastMinuteEndsAt?: string;
}

/** Where one side of an impossible-travel pair was. */
export interface ReportPlace {
  time?: string;
  city?: string;
  country?: string;
  ip?: string;
  lat?: number;
  lon?: number;
}

/** An impossible-travel detection: the two places and the speed between them. */
export interface ReportTravelPair {
  detectionId: string;
  time: string;
  entity: string;
  from: ReportPlace;
  to: ReportPlace;
  distanceKm?: number;
  speedKmh?: number;
  sentence: string;
}

/** Everything a report shows, read from Elasticsearch; {@link renderReport} turns it into HTML. */
export interface ReportData {
  generatedAt: string;
  from: string;
  to: string;
  indexPrefix: string;
  /**
   * Counts in the range. `incidents`, `dos` and `travel` may be more than the lists hold: the
   * lists keep the newest (at most 200 incidents, 10 DoS charts, 200 travel pairs), and the
   * report says so. `dos` counts among the incidents listed.
   */
  totals: { detections: number; incidents: number; rules: number; dos: number; travel: number };
  timeline: { intervalMs: number; buckets: string[]; series: { ruleId: string; counts: number[] }[] };
  entities: { key: string; detections: number; rules: string[]; last: string }[];
  incidents: ReportIncident[];
  dos: ReportDosIncident[];
  travel: ReportTravelPair[];
}
