import { BlockList } from 'node:net';
import type { Correlated } from '../../detectors';
import { batchCorrelationCalls, compileList, type CorrelationCall } from '../../detectors';
import { GEO_ANSWERS_KEPT, GeoipLiteFiles, correlationDocument, enrich, openGeoipLite, type GeoLookup, type GeoResult } from '../../ingest';
import { eventIndexName, eventIndexNameAt, type Family } from '../../schemas';
import { referenceCorrelationDocument, referenceEnrich, referenceEventIndexName } from '../support/hot-path-reference';
import { mixedHour } from '../support/mixed-hour';
import { randomEvents } from '../support/random-events';

/**
 * The second round of issue 12's CPU work (docs/performance.md, "3 December 2026, later"): each
 * replacement gives what the code before it gave, to the byte where it ends up in JSON.
 */

const events = [...mixedHour(Date.parse('2026-06-01T10:00:00Z')), ...randomEvents(31, 3000)];

describe('enrich, without the conditional spreads', () => {
  const database = { name: 'test-db', build: new Date('2026-01-01T00:00:00Z') };
  const lookups: [string, GeoLookup][] = [
    ['a lookup with every member', (): GeoResult => ({ geo: { country_iso_code: 'GB', city_name: 'London', location: { lat: 51.5, lon: -0.1 } }, accuracyKm: 20, database })],
    ['a lookup with only a geo', (): GeoResult => ({ geo: { country_iso_code: 'US' } })],
    ['a lookup that knows nothing', (): undefined => undefined],
  ];
  let bundled: GeoLookup;
  beforeAll(async () => {
    bundled = await openGeoipLite();
  });

  it.each(lookups)('gives the same enrichment, members in the same order, with %s', (_name, lookup) => {
    const differ = events.filter((event) => JSON.stringify(enrich(event, lookup)) !== JSON.stringify(referenceEnrich(event, lookup)));
    expect(differ.map((event) => event.id).slice(0, 5)).toStrictEqual([]);
    for (const event of events.slice(0, 200)) expect(enrich(event, lookup)).toStrictEqual(referenceEnrich(event, lookup));
  });

  it('gives the same enrichment with the bundled database', () => {
    const differ = events.filter((event) => JSON.stringify(enrich(event, bundled)) !== JSON.stringify(referenceEnrich(event, bundled)));
    expect(differ.map((event) => event.id).slice(0, 5)).toStrictEqual([]);
  });
});

describe('correlationDocument, without the conditional spreads', () => {
  const shapes: Correlated[] = [];
  const requests: Correlated['request'][] = [undefined, { policies: {}, failedPolicies: [] }, { policies: { authn: 'pass', authz: 'fail' }, failedPolicies: ['authz'] }];
  const devices: Correlated['device'][] = [undefined];
  for (const deviceId of [undefined, '', 'phone-1']) {
    for (const deviceAgeMs of [undefined, 0, 3_600_000]) {
      for (const country of [undefined, '', 'FR']) {
        devices.push({ knownDevices: 2, fromSession: true, ...(deviceId === undefined ? {} : { deviceId }), ...(deviceAgeMs === undefined ? {} : { deviceAgeMs }), ...(country === undefined ? {} : { country }) });
      }
    }
  }
  for (const request of requests) for (const device of devices) shapes.push({ ...(request ? { request } : {}), ...(device ? { device } : {}) });

  it.each(shapes.map((shape) => [JSON.stringify(shape), shape]))('writes %s as before, to the byte', (_text, shape) => {
    expect(JSON.stringify(correlationDocument(shape))).toBe(JSON.stringify(referenceCorrelationDocument(shape)));
    expect(correlationDocument(shape)).toStrictEqual(referenceCorrelationDocument(shape));
  });
});

describe('eventIndexNameAt (from the document\'s @timestamp)', () => {
  it('names the index eventIndexName named before, for every event time and family', () => {
    const times = [...events.map((event) => event.time), '2026-12-31T23:59:59.999-00:30', '2027-01-01T00:00:00+14:00', '1970-01-01T00:00:00Z', '0099-06-01T10:00:00Z', '9999-12-31T23:59:59Z'];
    const wrong: string[] = [];
    for (const family of ['policy', 'invocation', 'device'] as Family[]) {
      for (const time of times) {
        const expected = referenceEventIndexName('vigil', family, time);
        if (eventIndexNameAt('vigil', family, new Date(time).toISOString()) !== expected || eventIndexName('vigil', family, time) !== expected) wrong.push(`${family} ${time}`);
      }
    }
    expect(wrong).toStrictEqual([]);
  });
});

describe('answers kept per address', () => {
  afterEach(() => jest.restoreAllMocks());

  it('geoip-lite: an address asked again is not looked up in the files again; each answer is a fresh object', async () => {
    const lookup = await openGeoipLite();
    const files = jest.spyOn(GeoipLiteFiles.prototype, 'lookup');
    const first = lookup('81.2.69.142');
    const second = lookup('81.2.69.142');
    expect(files).toHaveBeenCalledTimes(1);
    expect(second).toStrictEqual(first);
    expect(second?.geo).not.toBe(first?.geo);
    expect(lookup('10.0.0.1')).toBeUndefined();
    expect(lookup('10.0.0.1')).toBeUndefined();
    expect(files).toHaveBeenCalledTimes(2);
  });

  it('geoip-lite: answers as a fresh database does, asked twice, past the bound and after evictions', async () => {
    const kept = await openGeoipLite();
    const addresses = Array.from({ length: GEO_ANSWERS_KEPT + 2000 }, (_unused, n) => `${[81, 8, 2, 41, 200][n % 5]}.${(n >> 8) % 256}.${n % 256}.${(n * 7) % 256}`);
    const reference = await openGeoipLite();
    const answers = addresses.map((address) => JSON.stringify(reference(address)));
    const wrong: string[] = [];
    for (let pass = 0; pass < 2; pass++) {
      addresses.forEach((address, n) => {
        if (JSON.stringify(kept(address)) !== answers[n]) wrong.push(`${address} on pass ${pass}`);
      });
    }
    expect(wrong.slice(0, 5)).toStrictEqual([]);
    expect(new Set(answers).size).toBeGreaterThan(100);
  });

  it('cidr lists: an address asked again is not checked against the ranges again; the answers are unchanged', () => {
    const list = compileList({ id: 'offices', kind: 'cidr', description: 'offices', values: ['203.0.113.0/24', '2001:db8::/32'] }, []);
    const check = jest.spyOn(BlockList.prototype, 'check');
    expect(list.has('203.0.113.77')).toBe(true);
    expect(list.has('203.0.113.77')).toBe(true);
    expect(list.has('198.51.100.1')).toBe(false);
    expect(list.has('198.51.100.1')).toBe(false);
    expect(check).toHaveBeenCalledTimes(2);
    expect(list.has('::ffff:203.0.113.9')).toBe(true);
    expect(list.has('2001:db8::1')).toBe(true);
    expect(list.has('not an address')).toBe(false);
    expect(list.has(42)).toBe(false);
    check.mockRestore();
    // Past the bound: 12,000 addresses asked twice, as a list without the memory answers.
    const fresh = (): ReturnType<typeof compileList> => compileList({ id: 'nets', kind: 'cidr', description: 'nets', values: ['10.0.0.0/9', '2001:db8::/33'] }, []);
    const kept = fresh();
    const addresses = Array.from({ length: 12_000 }, (_unused, n) => (n % 3 === 0 ? `2001:db8:${(n % 65536).toString(16)}::1` : `10.${n % 256}.${(n >> 8) % 256}.1`));
    const wrong: string[] = [];
    for (let pass = 0; pass < 2; pass++) {
      for (const address of addresses) if (kept.has(address) !== fresh().has(address)) wrong.push(address);
    }
    expect(wrong.slice(0, 5)).toStrictEqual([]);
  });
});

describe('batchCorrelationCalls', () => {
  const call = (script: CorrelationCall['script'], key: string): CorrelationCall => ({ script, keys: [key], args: [] });
  const shape = (calls: CorrelationCall[]): string[] => {
    const { batches, at } = batchCorrelationCalls(calls);
    // Every call has one place, and that place holds its keys.
    at.forEach(({ batch, item }, index) => {
      const found = batches[batch];
      expect(found && 'items' in found ? found.items[item]?.keys : undefined).toBe(calls[index]?.keys);
    });
    expect(at).toHaveLength(calls.length);
    return batches.map((batch) => `${batch.script}:${'items' in batch ? batch.items.map((entry) => entry.keys[0]).join(',') : ''}`);
  };

  it('puts a chunk of one family in one command per script, writes first', () => {
    expect(shape([call('noteRequest', 'r1'), call('readContext', 'u1'), call('noteRequest', 'r2'), call('readContext', 'u2')])).toEqual(['noteRequest:r1,r2', 'readContext:u1,u2']);
    expect(shape([call('readRequest', 'r1'), call('readContext', 'u1'), call('readRequest', 'r2')])).toEqual(['readRequest:r1,r2', 'readContext:u1']);
  });

  it('keeps a write after the reads of its keys listed before it, and reads after the writes before them', () => {
    expect(shape([call('noteDevice', 'u1'), call('readContext', 'u1'), call('noteDevice', 'u2'), call('readContext', 'u2')])).toEqual([
      'noteDevice:u1',
      'readContext:u1',
      'noteDevice:u2',
      'readContext:u2',
    ]);
    expect(shape([call('readRequest', 'r1'), call('noteRequest', 'r1'), call('readRequest', 'r1')])).toEqual(['readRequest:r1', 'noteRequest:r1', 'readRequest:r1']);
    // A write of other keys does not cut: noteDevice's keys are not readRequest's.
    expect(shape([call('readRequest', 'r1'), call('noteDevice', 'u1'), call('readRequest', 'r2')])).toEqual(['noteDevice:u1', 'readRequest:r1,r2']);
  });

  it('cuts a script\'s items into commands of at most 256', () => {
    const calls = Array.from({ length: 600 }, (_unused, n) => call('noteRequest', `r${n}`));
    const { batches, at } = batchCorrelationCalls(calls);
    expect(batches.map((batch) => ('items' in batch ? batch.items.length : 0))).toEqual([256, 256, 88]);
    expect(at[599]).toEqual({ batch: 2, item: 87 });
    expect(batchCorrelationCalls([])).toEqual({ batches: [], at: [] });
  });
});
