import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ReportData, ReportEvidence, ReportIncident, ReportPlace } from './report-data';

/**
 * Text made safe for HTML element content and attribute values: everything in a report comes
 * from events, and so from whoever sent the requests.
 */
export function escapeHtml(value: string | number | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>` and `&` as \u escapes, so no
 * string in the data can close the element or open a comment; U+2028/2029 for older parsers.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Chart.js's UMD build, read from node_modules so the report needs no network: MIT-licensed,
 * canvas-based, about 200 KB minified, no dependencies. The source-map comment is dropped (the
 * map isn't shipped), and a `</script` in it, should one ever appear, can't end the element.
 */
export function chartLibrary(): string {
  const dist = dirname(require.resolve('chart.js'));
  const source = readFileSync(join(dist, 'chart.umd.min.js'), 'utf8');
  return source.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n').replace(/<\/script/gi, '<\\/script');
}

const STYLE = `
  :root { --fg: #1d2330; --muted: #5f6b7a; --line: #dfe3ea; --bg: #f6f7f9; --card: #fff;
    --critical: #8b1c1c; --high: #c0392b; --medium: #d68910; --low: #2e86c1; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 20px 32px; background: #1d2330; color: #fff; }
  header h1 { margin: 0 0 4px; font-size: 22px; }
  header p { margin: 0; color: #c9d1dc; }
  main { padding: 16px 32px 48px; max-width: 1400px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 16px 20px; margin: 16px 0; }
  h2 { font-size: 17px; margin: 0 0 12px; }
  h3 { font-size: 15px; margin: 0 0 6px; }
  .totals { display: flex; gap: 16px; flex-wrap: wrap; }
  .total { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 18px; min-width: 150px; }
  .total b { display: block; font-size: 24px; }
  .chart { position: relative; height: 300px; }
  .chart.small { height: 240px; }
  table { border-collapse: collapse; width: 100%; margin-top: 8px; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
  td.mono { white-space: nowrap; }
  td.number { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; text-transform: uppercase; }
  .badge.critical { background: var(--critical); } .badge.high { background: var(--high); }
  .badge.medium { background: var(--medium); } .badge.low { background: var(--low); }
  .badge.status { background: #6c7a89; }
  .incident { border-left: 4px solid var(--line); padding-left: 12px; margin: 14px 0 22px; }
  .incident.critical { border-color: var(--critical); } .incident.high { border-color: var(--high); }
  .incident.medium { border-color: var(--medium); } .incident.low { border-color: var(--low); }
  .sentence { margin: 6px 0; font-size: 15px; }
  .meta { color: var(--muted); font-size: 12px; }
  .empty { color: var(--muted); font-style: italic; }
  footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px; }
`;

/** The browser side: reads the JSON block and draws every chart; no network, no eval. */
const CHARTS = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#2e86c1', '#c0392b', '#27ae60', '#d68910', '#8e44ad', '#16a085', '#7f8c8d', '#e74c3c', '#1abc9c', '#34495e', '#f39c12', '#9b59b6'];
  var long = data.timeline.intervalMs >= 86400000;
  function label(iso, withDate) {
    var text = iso.replace('T', ' ').replace(/:\\d\\d(\\.\\d+)?Z$/, '');
    return withDate ? text : text.slice(11);
  }
  var sameDay = data.from.slice(0, 10) === data.to.slice(0, 10);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  window.vigilCharts = [];
  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) window.vigilCharts.push(new Chart(canvas, config));
  }
  draw('timeline', {
    type: 'bar',
    data: {
      labels: data.timeline.buckets.map(function (iso) { return long ? iso.slice(0, 10) : label(iso, !sameDay); }),
      datasets: data.timeline.series.map(function (series, n) {
        return { label: series.ruleId, data: series.counts, backgroundColor: palette[n % palette.length], stack: 'rules' };
      })
    },
    options: { scales: { x: { stacked: true, title: { display: true, text: 'UTC' } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: 'detections' } } },
      plugins: { legend: { position: 'bottom' } } }
  });
  draw('entities', {
    type: 'bar',
    data: { labels: data.entities.map(function (entity) { return entity.key; }),
      datasets: [{ label: 'detections', data: data.entities.map(function (entity) { return entity.detections; }), backgroundColor: '#c0392b' }] },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } }
  });
  data.dos.forEach(function (incident, n) {
    var startMinute = incident.start.slice(0, 16);
    draw('dos-' + n, {
      data: {
        labels: incident.buckets.map(function (iso) { return label(iso, !sameDay); }),
        datasets: [
          { type: 'bar', label: 'requests / min', data: incident.requests, yAxisID: 'count',
            backgroundColor: incident.buckets.map(function (iso) { return iso.slice(0, 16) === startMinute ? '#8b1c1c' : '#2e86c1'; }) },
          { type: 'bar', label: '5xx / min', data: incident.errors, yAxisID: 'count', backgroundColor: '#d68910' },
          { type: 'line', label: 'distinct source IPs', data: incident.sources, yAxisID: 'count', borderColor: '#27ae60', backgroundColor: '#27ae60', pointRadius: 2 },
          { type: 'line', label: 'p95 latency (ms)', data: incident.p95LatencyMs, yAxisID: 'latency', borderColor: '#8e44ad', backgroundColor: '#8e44ad', pointRadius: 2, spanGaps: true }
        ]
      },
      options: { scales: {
        count: { type: 'linear', position: 'left', beginAtZero: true, grace: '5%', title: { display: true, text: 'per minute' } },
        latency: { type: 'linear', position: 'right', beginAtZero: true, grace: '10%', grid: { drawOnChartArea: false }, title: { display: true, text: 'ms' } } } }
    });
  });
  document.body.setAttribute('data-charts', String(window.vigilCharts.length));
})();
`;

const e = escapeHtml;

/** An ISO time as `2026-05-01 10:00:07Z`: seconds are enough to read, the full value is in the data. */
function when(iso: string | undefined): string {
  if (!iso) return '';
  return e(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z` : iso);
}

/** A measured value with at most two decimals. */
function amount(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function badge(severity: string): string {
  const known = ['critical', 'high', 'medium', 'low'].includes(severity) ? severity : 'low';
  return `<span class="badge ${known}">${e(severity)}</span>`;
}

function keyText(key: Record<string, string>): string {
  const entries = Object.entries(key);
  return entries.length === 0 ? '—' : entries.map(([field, value]) => `<code>${e(field)}=${e(value)}</code>`).join(' ');
}

function evidenceRows(evidence: readonly ReportEvidence[]): string {
  if (evidence.length === 0) return '<p class="empty">The detections behind this incident are no longer in the detections indices.</p>';
  const rows = evidence.map((item) => {
    const measured = item.observedValue === undefined ? '' : `${amount(item.observedValue)}${item.threshold === undefined ? '' : ` / ${amount(item.threshold)}`}`;
    const distinct = item.distinctValues.length > 0 ? `<div class="meta">${e(item.distinctField ?? 'distinct')}: ${item.distinctValues.slice(0, 8).map((value) => `<code>${e(value)}</code>`).join(', ')}${item.distinctValues.length > 8 ? ` … (${item.distinctValues.length})` : ''}</div>` : '';
    const window = item.windowStart && item.windowEnd ? `<div class="meta">window ${when(item.windowStart)} → ${when(item.windowEnd)}</div>` : '';
    const events = item.eventIds.length > 0 ? `<div class="meta">events: ${item.eventIds.slice(0, 5).map((id) => `<code>${e(id)}</code>`).join(', ')}${item.eventIds.length > 5 ? ` … (${item.eventIds.length})` : ''}</div>` : '';
    return `<tr><td class="mono">${when(item.time)}</td><td><code>${e(item.ruleId)}</code><div class="meta">${e(item.ruleName)}</div></td><td>${e(item.sentence)}${distinct}${window}${events}</td><td class="number">${e(measured)}</td><td>${keyText(item.key)}</td></tr>`;
  });
  return `<table><thead><tr><th>time (UTC)</th><th>rule</th><th>what was found</th><th>observed / threshold</th><th>key</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function incidentBlock(incident: ReportIncident): string {
  const severity = ['critical', 'high', 'medium', 'low'].includes(incident.severity) ? incident.severity : 'low';
  // A resolved alert's own sentence says only that it went quiet: lead with what was found.
  const found = incident.evidence.at(-1)?.sentence ?? incident.sentence;
  return `<article class="incident ${severity}" id="incident-${e(incident.id)}">
  <h3>${badge(incident.severity)} <span class="badge status">${e(incident.status)}</span> ${e(incident.title)}</h3>
  <p class="sentence">${e(found)}</p>${found === incident.sentence ? '' : `\n  <p class="meta">alert: ${e(incident.sentence)}</p>`}
  <p class="meta">from ${when(incident.start)} to ${incident.end ? when(incident.end) : `${when(incident.lastDetected)} (last detection, still open)`} · ${e(incident.count)} detections · rules ${incident.rules.map((rule) => `<code>${e(rule)}</code>`).join(', ')} · key ${keyText(incident.key)} · alert <code>${e(incident.id)}</code></p>
  ${evidenceRows(incident.evidence)}
</article>`;
}

function placeText(place: ReportPlace): string {
  const where = [place.city, place.country].filter((part) => part !== undefined && part !== '').join(', ') || 'unknown place';
  const coordinates = place.lat === undefined || place.lon === undefined ? '' : ` (${place.lat.toFixed(2)}, ${place.lon.toFixed(2)})`;
  return `${e(where)}${e(coordinates)}${place.ip ? `<div class="meta">${e(place.ip)}</div>` : ''}${place.time ? `<div class="meta">${when(place.time)}</div>` : ''}`;
}

/** What a list of the report leaves out, one sentence each (none when every list is whole). */
export function cutLists(data: ReportData): string[] {
  const cuts: [number, number, string][] = [
    [data.incidents.length, data.totals.incidents, 'incidents'],
    [data.dos.length, data.totals.dos, 'DoS incidents charted (of the incidents listed)'],
    [data.travel.length, data.totals.travel, 'impossible-travel pairs'],
  ];
  const notes = cuts.filter(([shown, total]) => shown < total).map(([shown, total, what]) => `the report lists the newest ${shown} of ${total} ${what}; narrow --from/--to for the rest`);
  const drawn = data.timeline.series.length;
  if (drawn < data.totals.rules) notes.push(`the timeline draws the ${drawn} of ${data.totals.rules} rules with most detections`);
  return notes;
}

/** The sentence under a section's title when its list was cut. */
function cutNote(shown: number, total: number, what: string): string {
  return shown < total ? `<p class="meta">The newest ${e(shown)} of ${e(total)} ${what} are shown; narrow the range for the rest.</p>` : '';
}

/**
 * The report as one HTML file: styles, Chart.js and the data inline, so it opens anywhere with
 * no network. A Content-Security-Policy allows no connection and only the report's own scripts
 * (a fresh nonce), so even markup that slipped past the escaping could neither run nor call out.
 */
export function renderReport(data: ReportData, library: string = chartLibrary()): string {
  const nonce = randomBytes(16).toString('base64');
  // Ours alone (a base64 nonce and fixed words), so it goes into the attribute as it is.
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'`;
  const incidents = data.incidents.length === 0 ? '<p class="empty">No incident was active in this range.</p>' : data.incidents.map(incidentBlock).join('\n');
  const entities =
    data.entities.length === 0
      ? '<p class="empty">No detections in this range.</p>'
      : `<div class="chart small"><canvas id="entities" role="img" aria-label="detections per entity"></canvas></div>
  <table><thead><tr><th>entity (the rule's key)</th><th>detections</th><th>rules</th><th>last (UTC)</th></tr></thead><tbody>${data.entities
    .map((entity) => `<tr><td><code>${e(entity.key)}</code></td><td class="number">${e(entity.detections)}</td><td>${entity.rules.map((rule) => `<code>${e(rule)}</code>`).join(', ')}</td><td class="mono">${when(entity.last)}</td></tr>`)
    .join('')}</tbody></table>`;
  const dos =
    data.dos.length === 0
      ? '<p class="empty">No DoS incident (an alert on one endpoint) in this range.</p>'
      : data.dos
          .map(
            (incident, n) => `<h3>${e(incident.title)}</h3>
  <p class="meta">endpoint <code>${e(incident.api)}</code> <code>${e(incident.route)}</code> · incident from ${when(incident.start)} (the dark bar) · per minute, UTC, from 15 minutes before · ${e(incident.requests.reduce((sum, count) => sum + count, 0))} requests, ${e(incident.errors.reduce((sum, count) => sum + count, 0))} 5xx${incident.lastMinuteEndsAt ? ` · the last minute runs only to ${when(incident.lastMinuteEndsAt)} (its counts are of part of a minute)` : ''}</p>
  <div class="chart"><canvas id="dos-${n}" role="img" aria-label="traffic of ${e(incident.api)} ${e(incident.route)}"></canvas></div>`,
          )
          .join('\n');
  const travel =
    data.travel.length === 0
      ? '<p class="empty">No impossible-travel detection in this range.</p>'
      : `<table><thead><tr><th>time (UTC)</th><th>who</th><th>from</th><th>to</th><th>distance</th><th>speed</th><th>what was found</th></tr></thead><tbody>${data.travel
          .map(
            (pair) =>
              `<tr><td class="mono">${when(pair.time)}</td><td><code>${e(pair.entity)}</code></td><td>${placeText(pair.from)}</td><td>${placeText(pair.to)}</td><td class="number">${pair.distanceKm === undefined ? '' : `${e(Math.round(pair.distanceKm))} km`}</td><td class="number">${pair.speedKmh === undefined ? '' : `${e(Math.round(pair.speedKmh))} km/h`}</td><td>${e(pair.sentence)}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil incident report ${e(data.from)} – ${e(data.to)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Vigil incident report</h1>
  <p>${e(data.from)} to ${e(data.to)} (UTC) · indices <code>${e(data.indexPrefix)}-*</code> · generated ${e(data.generatedAt)}</p>
</header>
<main>
  <div class="totals">
    <div class="total"><b>${e(data.totals.incidents)}</b>incidents</div>
    <div class="total"><b>${e(data.totals.detections)}</b>detections</div>
    <div class="total"><b>${e(data.totals.rules)}</b>rules fired</div>
    <div class="total"><b>${e(data.totals.dos)}</b>DoS incidents</div>
    <div class="total"><b>${e(data.totals.travel)}</b>impossible-travel pairs</div>
  </div>
  <section id="timeline-section">
    <h2>Detections by rule over time</h2>
    ${data.timeline.series.length < data.totals.rules ? `<p class="meta">The ${e(data.timeline.series.length)} of ${e(data.totals.rules)} rules with most detections are drawn.</p>` : ''}
    ${data.timeline.series.length === 0 ? '<p class="empty">No detections in this range.</p>' : '<div class="chart"><canvas id="timeline" role="img" aria-label="detections by rule over time"></canvas></div>'}
  </section>
  <section id="entities-section">
    <h2>Top entities</h2>
    ${entities}
  </section>
  <section id="dos-section">
    <h2>DoS incidents: the endpoint's traffic around each</h2>
    ${cutNote(data.dos.length, data.totals.dos, 'DoS incidents')}
    ${dos}
  </section>
  <section id="travel-section">
    <h2>Impossible travel</h2>
    ${cutNote(data.travel.length, data.totals.travel, 'impossible-travel pairs')}
    ${travel}
  </section>
  <section id="incidents-section">
    <h2>Incidents (${e(data.totals.incidents)})</h2>
    ${cutNote(data.incidents.length, data.totals.incidents, 'incidents')}
    ${incidents}
  </section>
</main>
<footer>Made by <code>vigil report</code>. Charts: Chart.js (MIT), bundled in this file. Everything shown comes from Vigil's Elasticsearch indices.</footer>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script nonce="${nonce}">${library}</script>
<script nonce="${nonce}">${CHARTS}</script>
</body>
</html>
`;
}
