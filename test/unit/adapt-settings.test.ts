import { adapterOf, adapterSettingsOf, createAdapt } from '../../app';
import { istioRecord } from '../support/gateway-records';
import { ConfigError, loadConfig } from '../../platform';

function issuesOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('vigil adapt settings', () => {
  it('builds the adapter settings from VIGIL_ADAPT_*, the group map resolving most specific first', () => {
    const settings = adapterSettingsOf(
      loadConfig({ VIGIL_ADAPT_SERVICE: 'edge-kong', VIGIL_ADAPT_ENVIRONMENT: 'production', VIGIL_ADAPT_GROUPS: '{"routes":{"login":"accounts"},"services":{"shop":"public"},"default":"edge"}' }),
    );
    expect({ ...settings, groups: undefined }).toEqual({ service: 'edge-kong', kind: 'gateway', environment: 'production', groups: undefined, apisixAnonymousConsumers: ['anonymous'] });
    expect(settings.groups.resolve({ route: 'login', service: 'shop' })).toBe('accounts');
    expect(settings.groups.resolve({ route: 'other', service: 'shop' })).toBe('public');
    expect(settings.groups.resolve({ route: 'other' })).toBe('edge');
    expect(adapterSettingsOf(loadConfig({ VIGIL_ADAPT_SERVICE: 'edge-kong', VIGIL_ADAPT_GROUPS: '{"default":"edge"}', VIGIL_ADAPT_KONG_USER_HEADER: 'on' })).kongUserHeader).toBe(true);
    expect(
      adapterSettingsOf(loadConfig({ VIGIL_ADAPT_SERVICE: 'edge-apisix', VIGIL_ADAPT_GROUPS: '{"default":"edge"}', VIGIL_ADAPT_APISIX_ANONYMOUS_CONSUMERS: 'guest, public-web' })).apisixAnonymousConsumers,
    ).toEqual(['guest', 'public-web']);
  });

  it('refuses to start without a service name or a group map, naming both', () => {
    expect(issuesOf(() => adapterSettingsOf(loadConfig({})))).toEqual([
      'VIGIL_ADAPT_SERVICE: required by vigil adapt (the source.service of the events it builds, e.g. edge-kong-eu)',
      'VIGIL_ADAPT_GROUPS: required by vigil adapt (the policy group of each route, service or tag; at least {"default":"<group>"})',
    ]);
  });

  it('takes the Envoy client from X-Forwarded-For when VIGIL_ADAPT_ENVOY_CLIENT_IP is xff, from the remote address by default', () => {
    const env = { VIGIL_ADAPT_SERVICE: 'edge', VIGIL_ADAPT_GROUPS: '{"default":"edge"}' };
    const record = Buffer.from(`${JSON.stringify(istioRecord({ downstream_remote_address: '10.0.0.5:41234', downstream_direct_remote_address: '10.0.0.5:41234', x_forwarded_for: '198.51.100.77, 10.0.0.5' }))}\n`);
    const clientOf = (config: ReturnType<typeof loadConfig>): unknown => adapterOf(config, 'envoy')?.translate(record, adapterSettingsOf(config)).events[0]?.client?.ip;
    expect(clientOf(loadConfig(env))).toBe('10.0.0.5');
    expect(clientOf(loadConfig({ ...env, VIGIL_ADAPT_ENVOY_CLIENT_IP: 'xff' }))).toBe('198.51.100.77');
    expect(issuesOf(() => loadConfig({ ...env, VIGIL_ADAPT_ENVOY_CLIENT_IP: 'forwarded' }))[0]).toMatch(/^VIGIL_ADAPT_ENVOY_CLIENT_IP: /);
    // Another format is the registered one.
    expect(adapterOf(loadConfig({ ...env, VIGIL_ADAPT_ENVOY_CLIENT_IP: 'xff' }), 'kong')?.format).toBe('kong');
  });

  it('reads VIGIL_ADAPT_DERIVED_POLICIES: all (the default) sets nothing, none no kind, a list its kinds once each', () => {
    const env = { VIGIL_ADAPT_SERVICE: 'edge', VIGIL_ADAPT_GROUPS: '{"default":"edge"}' };
    const derivedOf = (value?: string): unknown => adapterSettingsOf(loadConfig(value === undefined ? env : { ...env, VIGIL_ADAPT_DERIVED_POLICIES: value })).derivedPolicies;
    expect(loadConfig(env).adapt.derivedPolicies).toBe('all');
    expect(derivedOf()).toBeUndefined();
    expect(derivedOf('')).toBeUndefined();
    expect(derivedOf('all')).toBeUndefined();
    expect(derivedOf('none')).toEqual([]);
    expect(derivedOf('authz, rate_limit,authz')).toEqual(['authz', 'rate_limit']);
  });

  it.each([
    ['everything', '"everything" is not accepted'],
    ['authn,login', '"login" is not accepted'],
    ['all,authn', '"all" is not accepted'],
    ['None', '"None" is not accepted'],
    [' , ', 'empty'],
  ])('refuses VIGIL_ADAPT_DERIVED_POLICIES=%j at start, naming the variable and the accepted values', (value, named) => {
    expect(issuesOf(() => loadConfig({ VIGIL_ADAPT_DERIVED_POLICIES: value }))).toEqual([
      `VIGIL_ADAPT_DERIVED_POLICIES: ${named}: expected all or none alone, or a comma-separated list of policy kinds (authn, authz, rate_limit, json_threat, xml_threat, custom)`,
    ]);
  });

  it('refuses an unknown format or a bad topic before connecting to anything', () => {
    const config = loadConfig({ VIGIL_ADAPT_SERVICE: 'edge', VIGIL_ADAPT_GROUPS: '{"default":"edge"}' });
    expect(issuesOf(() => createAdapt(config, { format: 'nginx', topic: 'raw' }))).toEqual(['--format: "nginx" is not a format vigil adapt knows (kong, apisix, envoy, otlp, wso2, tyk)']);
    expect(issuesOf(() => createAdapt(config, { format: 'kong', topic: 'raw topic' }))).toEqual(['--topic: "raw topic" is not a Kafka topic name (letters, digits, ".", "_" and "-")']);
    // One of Vigil's own topics: it writes events and dead letters, and would read them back for ever.
    expect(issuesOf(() => createAdapt(config, { format: 'kong', topic: config.topics.deadLetter }))).toEqual([
      `--topic: "${config.topics.deadLetter}" is VIGIL_TOPIC_DEADLETTER, a topic of Vigil's own: give the gateway's raw topic (the intake's, ${config.intake.topic}, for Kong's HTTP log)`,
    ]);
    expect(issuesOf(() => createAdapt(config, { format: 'envoy', topic: config.topics.invocation }))).toHaveLength(1);
  });
});
