import { cutLists, escapeHtml, jsonForScript, renderReport } from '../../scripts/report-html';
import type { ReportData } from '../../scripts/report-data';
import { ReportRangeError, parseReportRange, parseReportTime, timelineInterval } from '../../scripts/report';
import { computeCoverage } from '../../scripts/coverage';

const HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">';

/** A report whose every attacker-influenced string is markup. */
function hostileReport(): ReportData {
  return {
    generatedAt: '2026-05-01T11:00:00.000Z',
    from: '2026-05-01T10:00:00.000Z',
    to: '2026-05-01T11:00:00.000Z',
    indexPrefix: 'vigil',
    totals: { detections: 1, incidents: 1, rules: 1, dos: 0, travel: 1 },
    timeline: { intervalMs: 60_000, buckets: ['2026-05-01T10:00:00.000Z'], series: [{ ruleId: HOSTILE, counts: [1] }] },
    entities: [{ key: `actor.userId=${HOSTILE}`, detections: 1, rules: [HOSTILE], last: '2026-05-01T10:00:00.000Z' }],
    incidents: [
      {
        id: 'a-1',
        title: `Impossible travel: actor.userId=${HOSTILE}`,
        severity: 'high',
        status: 'active',
        start: '2026-05-01T10:00:00.000Z',
        lastDetected: '2026-05-01T10:00:00.000Z',
        count: 1,
        rules: ['impossible-travel'],
        sentence: `${HOSTILE} moved 17000 km`,
        key: { 'actor.userId': HOSTILE },
        evidence: [
          {
            id: 'd-1',
            time: '2026-05-01T10:00:00.000Z',
            ruleId: 'impossible-travel',
            ruleName: HOSTILE,
            severity: 'high',
            sentence: HOSTILE,
            key: { 'actor.userId': HOSTILE },
            distinctValues: [HOSTILE],
            eventIds: [HOSTILE],
          },
        ],
      },
    ],
    dos: [],
    travel: [{ detectionId: 'd-1', time: '2026-05-01T10:00:00.000Z', entity: HOSTILE, from: { city: HOSTILE, ip: '81.2.69.142' }, to: { country: HOSTILE }, distanceKm: 17000, speedKmh: 90000, sentence: HOSTILE }],
  };
}

describe('vigil report: HTML', () => {
  it('escapes markup in text and attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
  });

  it('embeds JSON that no string can close the script element of', () => {
    const embedded = jsonForScript({ name: '</script><script>alert(1)</script>', line: '\u2028' });
    expect(embedded).not.toMatch(/[<>\u2028]/);
    expect(JSON.parse(embedded)).toEqual({ name: '</script><script>alert(1)</script>', line: '\u2028' });
  });

  it('renders attacker-controlled strings as text: the only script elements are its own three', () => {
    const html = renderReport(hostileReport(), '/* chart library */');
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain('<img');
    expect(html).toContain(escapeHtml(HOSTILE));
    expect(html.match(/<script\b/g)).toHaveLength(3);
    // Only scripts with the report's nonce may run, and nothing may be fetched.
    const nonce = /script-src 'nonce-([^']+)'/.exec(html)?.[1];
    expect(nonce).toBeDefined();
    expect(html.split(`<script nonce="${nonce ?? 'missing'}">`)).toHaveLength(3);
    expect(html).toContain("default-src 'none'");
  });

  it('inlines Chart.js, with no reference to anything outside the file', () => {
    const html = renderReport(hostileReport());
    expect(html.length).toBeGreaterThan(150_000);
    expect(html).toContain('window.Chart=');
    expect(html).not.toMatch(/sourceMappingURL|<link\b|\bsrc="http/);
  });

  it('says when a DoS chart\'s last minute is cut by the report\'s end, and when a list is cut', () => {
    const dos = { alertId: 'a-2', title: 'Request surge', api: 'shop', route: '/v1/checkout', start: '2026-05-01T10:50:00.000Z', buckets: ['2026-05-01T10:59:00.000Z'], requests: [16], errors: [0], p95LatencyMs: [12], sources: [3] };
    const whole = renderReport({ ...hostileReport(), dos: [dos], totals: { ...hostileReport().totals, dos: 1 } }, '');
    expect(whole).not.toContain('the last minute runs only to');
    expect(whole).not.toContain('The newest');
    const cut = renderReport({ ...hostileReport(), dos: [{ ...dos, lastMinuteEndsAt: '2026-05-01T10:59:07.500Z' }], totals: { ...hostileReport().totals, dos: 12, incidents: 250 } }, '');
    expect(cut).toMatch(/the last minute runs only to [^<]*10:59:07/);
    expect(cut).toContain('The newest 1 of 12 DoS incidents are shown; narrow the range for the rest.');
    expect(cut).toContain('The newest 1 of 250 incidents are shown; narrow the range for the rest.');
    // More rules fired than the timeline draws.
    const many = { ...hostileReport(), totals: { ...hostileReport().totals, rules: 31 } };
    expect(renderReport(many, '')).toContain('The 1 of 31 rules with most detections are drawn.');
    expect(cutLists(many)).toContain('the timeline draws the 1 of 31 rules with most detections');
    expect(cutLists(hostileReport())).toEqual([]);
  });

  it('shows an empty range as such, not as an error', () => {
    const empty: ReportData = { ...hostileReport(), totals: { detections: 0, incidents: 0, rules: 0, dos: 0, travel: 0 }, timeline: { intervalMs: 60_000, buckets: [], series: [] }, entities: [], incidents: [], travel: [] };
    const html = renderReport(empty, '');
    expect(html).toContain('No incident was active in this range.');
    expect(html).toContain('No impossible-travel detection in this range.');
    expect(html).not.toContain('<canvas');
  });
});

describe('vigil report: the time range', () => {
  const now = new Date('2026-05-01T12:00:00.000Z');

  it('takes ISO 8601 and now-relative times', () => {
    expect(parseReportTime('now', now).toISOString()).toBe('2026-05-01T12:00:00.000Z');
    expect(parseReportTime('now-15m', now).toISOString()).toBe('2026-05-01T11:45:00.000Z');
    expect(parseReportTime('now-2h', now).toISOString()).toBe('2026-05-01T10:00:00.000Z');
    expect(parseReportTime('2026-04-30T08:00:00Z', now).toISOString()).toBe('2026-04-30T08:00:00.000Z');
  });

  it('names what is wrong with a bad time or an empty range', () => {
    expect(() => parseReportTime('yesterday', now)).toThrow('"yesterday" is not a time');
    // Without a zone it would be read in the host's zone: other hours on a host not set to UTC.
    expect(() => parseReportTime('2026-05-01T10:00', now)).toThrow('"2026-05-01T10:00" has no zone: add one (2026-05-01T10:00Z for UTC, or +02:00)');
    expect(parseReportTime('2026-05-01', now).toISOString()).toBe('2026-05-01T00:00:00.000Z');
    expect(parseReportTime('2026-05-01T10:00+02:00', now).toISOString()).toBe('2026-05-01T08:00:00.000Z');
    expect(() => parseReportRange('now', 'now-1h', now)).toThrow('--from (2026-05-01T12:00:00.000Z) must be before --to (2026-05-01T11:00:00.000Z)');
  });

  // Date.parse moves them: 2026-02-30 was read as 2 March, T24:00 as the next day, and a report
  // (or `vigil rules coverage`) covered other days than the ones asked for, without a word.
  it('refuses a date or time that does not exist, as vigil deadletters does, for the report and for rules coverage', async () => {
    for (const text of ['2026-02-30', '2026-02-30T10:00:00Z', '2026-05-01T24:00:00Z', '2026-11-31', '2026-04-31T23:00:00+02:00', '2026-05-01T10:60:00Z', '2026-05-01T10:00:00+19:00']) {
      expect(() => parseReportTime(text, now)).toThrow(new ReportRangeError(`"${text}" is not a time: use ISO 8601 with a zone (2026-05-01T10:00:00Z, or a date: 2026-05-01) or now, now-15m, now-2h, now-1d`));
    }
    expect(() => parseReportRange('2026-11-01', '2026-11-31', now)).toThrow(ReportRangeError);
    // A leap day, and zones either side of UTC that move the day, are real.
    expect(parseReportTime('2028-02-29T23:30:00-05:00', now).toISOString()).toBe('2028-03-01T04:30:00.000Z');
    expect(parseReportTime('2026-05-01T00:30:00+0200', now).toISOString()).toBe('2026-04-30T22:30:00.000Z');
    // Coverage reads its range with the report's parser, before it connects to anything.
    await expect(computeCoverage({ from: '2026-02-30', to: 'now' })).rejects.toThrow(ReportRangeError);
  });

  it('keeps the timeline at most about 120 buckets', () => {
    expect(timelineInterval({ from: new Date(0), to: new Date(3_600_000) })).toBe(60_000);
    expect(timelineInterval({ from: new Date(0), to: new Date(86_400_000) })).toBe(15 * 60_000);
    expect(timelineInterval({ from: new Date(0), to: new Date(30 * 86_400_000) })).toBe(12 * 3_600_000);
  });
});
