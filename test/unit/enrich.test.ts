import { enrich, ipScope, ipScopeUncached, openGeoipLite, type GeoLookup, type GeoResult } from '../../ingest';

let geoipLiteLookup: GeoLookup;
beforeAll(async () => {
  geoipLiteLookup = await openGeoipLite();
});
import { eventSchema, familySchemas, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

/** A lookup that remembers every address it was asked for and answers with a fixed place. */
function recordingLookup(answer: GeoResult | 'nothing' = { geo: { country_iso_code: 'ZZ' }, accuracyKm: 5 }): GeoLookup & {
  calls: string[];
} {
  const calls: string[] = [];
  const lookup = (ip: string): GeoResult | undefined => {
    calls.push(ip);
    return answer === 'nothing' ? undefined : answer;
  };
  return Object.assign(lookup, { calls });
}

function policyFrom(ip: string | undefined): VigilEvent {
  return familySchemas.policy.parse(withField(policyEvent(), 'client.ip', ip));
}

describe('ipScope', () => {
  it.each([
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['192.168.1.20', 'private'],
    ['172.16.0.1', 'private'],
    ['172.20.10.5', 'private'],
    ['172.31.255.255', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['::ffff:10.1.2.3', 'private'],
    ['::FFFF:192.168.0.1', 'private'],
    ['127.0.0.1', 'reserved'],
    ['127.255.0.9', 'reserved'],
    ['0.0.0.0', 'reserved'],
    ['169.254.169.254', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['224.0.0.251', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::', 'reserved'],
    ['::1', 'reserved'],
    ['fe80::1', 'reserved'],
    ['febf::1', 'reserved'],
    ['ff02::1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['::ffff:127.0.0.1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['81.2.69.142', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.1', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.1', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::ffff:8.8.8.8', 'public'],
  ])('%s is %s', (ip, scope) => {
    expect(ipScope(ip)).toBe(scope);
  });

  it.each(['', 'localhost', '999.1.1.1', 'not an ip', '1.2.3'])('treats %p, which is no address, as reserved', (text) => {
    expect(ipScope(text)).toBe('reserved');
  });

  it('answers as the uncached check does, asked twice, past the cache bound and after evictions', () => {
    // 10.x (private), 100.64-127.x (private), 127.x (reserved), 8.x (public): 4 × 3,000 addresses,
    // more than the 10,000 the cache keeps, each asked twice with the whole set in between.
    const addresses = [10, 100, 127, 8].flatMap((first) =>
      Array.from({ length: 3000 }, (_unused, n) => `${first}.${first === 100 ? 64 + (n % 64) : n % 256}.${Math.floor(n / 256)}.${n % 7}`),
    );
    const scopes = new Set<string>();
    const wrong: string[] = [];
    for (let pass = 0; pass < 2; pass++) {
      for (const address of addresses) {
        const scope = ipScope(address);
        scopes.add(scope);
        if (scope !== ipScopeUncached(address)) wrong.push(`${address} on pass ${pass}: ${scope}`);
      }
    }
    expect(wrong.slice(0, 5)).toStrictEqual([]);
    expect([...scopes].sort()).toStrictEqual(['private', 'public', 'reserved']);
  });
});

describe('openGeoipLite (the bundled database)', () => {
  it('locates 81.2.69.142 in Great Britain, with a place and an accuracy', () => {
    const found = geoipLiteLookup('81.2.69.142');
    expect(found?.geo.country_iso_code).toBe('GB');
    expect(found?.geo.region_iso_code).toMatch(/^GB-/);
    const location = found?.geo.location;
    expect(location).toBeDefined();
    expect(location?.lat).toBeGreaterThan(49);
    expect(location?.lat).toBeLessThan(61);
    expect(location?.lon).toBeGreaterThan(-9);
    expect(location?.lon).toBeLessThan(2);
    expect(found?.accuracyKm).toBeGreaterThan(0);
  });

  it('locates 8.8.8.8 in the United States', () => {
    expect(geoipLiteLookup('8.8.8.8')?.geo.country_iso_code).toBe('US');
  });

  it('answers undefined for an address it does not know', () => {
    expect(geoipLiteLookup('10.1.2.3')).toBeUndefined();
  });

  it('never puts null or empty fields in the geo document', () => {
    const found = geoipLiteLookup('8.8.8.8');
    expect(found).toBeDefined();
    for (const value of Object.values(found?.geo ?? {})) {
      expect(value).not.toBeNull();
      expect(value).not.toBe('');
    }
  });
});

describe('enrich', () => {
  it('looks a public client IP up with the real database (81.2.69.142: GB)', () => {
    const enrichment = enrich(policyFrom('81.2.69.142'), geoipLiteLookup);
    expect(enrichment).toMatchObject({ ip: '81.2.69.142', ipScope: 'public', geoSource: 'geoip' });
    expect(enrichment.geo?.country_iso_code).toBe('GB');
    expect(Number.isFinite(enrichment.geo?.location?.lat)).toBe(true);
    expect(Number.isFinite(enrichment.geo?.location?.lon)).toBe(true);
    expect(enrichment.accuracyKm).toBeGreaterThan(0);
  });

  it('looks a public client IP up with the real database (8.8.8.8: US)', () => {
    const enrichment = enrich(policyFrom('8.8.8.8'), geoipLiteLookup);
    expect(enrichment.geoSource).toBe('geoip');
    expect(enrichment.geo?.country_iso_code).toBe('US');
  });

  it('passes the public address to the lookup and returns what it found', () => {
    const lookup = recordingLookup({ geo: { country_iso_code: 'NL', city_name: 'Amsterdam' }, accuracyKm: 20 });
    const enrichment = enrich(policyFrom('81.2.69.142'), lookup);
    expect(lookup.calls).toStrictEqual(['81.2.69.142']);
    expect(enrichment).toStrictEqual({
      ip: '81.2.69.142',
      ipScope: 'public',
      geo: { country_iso_code: 'NL', city_name: 'Amsterdam' },
      geoSource: 'geoip',
      accuracyKm: 20,
    });
  });

  it.each(['10.1.2.3', '192.168.0.7', '172.16.4.4', '100.64.1.1', '127.0.0.1', '::1', 'fe80::1', 'fc00::1', '::ffff:10.1.2.3'])(
    'never looks up %s, and says its scope',
    (ip) => {
      const lookup = recordingLookup();
      const enrichment = enrich(policyFrom(ip), lookup);
      expect(lookup.calls).toStrictEqual([]);
      // The contract writes an IPv4-mapped address as the IPv4 address it is.
      expect(enrichment).toStrictEqual({ ip: ip === '::ffff:10.1.2.3' ? '10.1.2.3' : ip, ipScope: ipScope(ip), geoSource: 'none' });
      expect(enrichment.ipScope).not.toBe('public');
    },
  );

  it('says none when there is no IP at all', () => {
    const lookup = recordingLookup();
    expect(enrich(policyFrom(undefined), lookup)).toStrictEqual({ geoSource: 'none' });
    expect(lookup.calls).toStrictEqual([]);
  });

  it('says none when the lookup knows nothing of a public address', () => {
    const lookup = recordingLookup('nothing');
    expect(enrich(policyFrom('8.8.8.8'), lookup)).toStrictEqual({ ip: '8.8.8.8', ipScope: 'public', geoSource: 'none' });
    expect(lookup.calls).toStrictEqual(['8.8.8.8']);
  });

  it('omits accuracyKm when the lookup gives none', () => {
    const enrichment = enrich(policyFrom('8.8.8.8'), recordingLookup({ geo: { country_iso_code: 'US' } }));
    expect(enrichment).not.toHaveProperty('accuracyKm');
  });

  it('prefers the producer location of a device event over geoip, without a lookup', () => {
    const lookup = recordingLookup();
    const event = familySchemas.device.parse(withField(deviceEvent(), 'client.ip', '81.2.69.142'));
    const enrichment = enrich(event, lookup);
    expect(lookup.calls).toStrictEqual([]);
    expect(enrichment).toStrictEqual({
      ip: '81.2.69.142',
      ipScope: 'public',
      geo: { location: { lat: 48.8566, lon: 2.3522 }, country_iso_code: 'FR', city_name: 'Paris' },
      geoSource: 'producer',
      accuracyKm: 0.5,
    });
  });

  it('prefers the producer location even with the real database at hand', () => {
    const enrichment = enrich(familySchemas.device.parse(deviceEvent()), geoipLiteLookup);
    expect(enrichment.geoSource).toBe('producer');
    expect(enrichment.geo?.country_iso_code).toBe('FR');
  });

  it('takes the device IP when the client has none, and looks it up when the device sent no location', () => {
    const lookup = recordingLookup();
    const event = familySchemas.device.parse(withField(deviceEvent(), 'device.geo', undefined));
    expect(event.client.ip).toBeUndefined();
    const enrichment = enrich(event, lookup);
    expect(lookup.calls).toStrictEqual(['8.8.8.8']);
    expect(enrichment).toMatchObject({ ip: '8.8.8.8', ipScope: 'public', geoSource: 'geoip' });
  });

  it('prefers the client IP to the device IP', () => {
    const lookup = recordingLookup();
    const event = familySchemas.device.parse(withField(withField(deviceEvent(), 'device.geo', undefined), 'client.ip', '81.2.69.142'));
    expect(enrich(event, lookup).ip).toBe('81.2.69.142');
    expect(lookup.calls).toStrictEqual(['81.2.69.142']);
  });

  it('keeps producer geo with only the required coordinates', () => {
    const event = eventSchema.parse(withField(deviceEvent(), 'device.geo', { lat: -33.87, lon: 151.21 }));
    expect(enrich(event, recordingLookup())).toStrictEqual({
      ip: '8.8.8.8',
      ipScope: 'public',
      geo: { location: { lat: -33.87, lon: 151.21 } },
      geoSource: 'producer',
    });
  });

  it('works for invocation events with a private client IP', () => {
    const lookup = recordingLookup();
    expect(enrich(familySchemas.invocation.parse(invocationEvent()), lookup)).toStrictEqual({
      ip: '10.1.2.3',
      ipScope: 'private',
      geoSource: 'none',
    });
    expect(lookup.calls).toStrictEqual([]);
  });
});
