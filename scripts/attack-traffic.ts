import type { EmitInput, Emitter } from '../ingest/sdk';
import { homeOf } from './simulated-traffic';

/** One attack the demo injects, and the rules that should catch it. */
export interface InjectedAttack {
  name: string;
  description: string;
  expectedRules: string[];
  events: number;
  /** The users, IPs and consumers it used: a detection keyed by one of them belongs to it. */
  actors: string[];
}

type PolicyInput = EmitInput<'policy'>;

const login = (path = '/v1/login'): PolicyInput['policy']['resource'] => ({ api: 'accounts-v1', method: 'POST', path });

/**
 * Emits attacks among the normal traffic, each shaped like the real thing and aimed at what one
 * default rule looks for. Times are spread over the minutes before `now`, in order.
 */
export function injectAttacks(emitter: Emitter, options: { now?: Date; labels?: Record<string, string>; runId: string }): InjectedAttack[] {
  const now = (options.now ?? new Date()).getTime();
  const labels = options.labels ? { labels: options.labels } : {};
  const at = (secondsAgo: number): string => new Date(now - secondsAgo * 1000).toISOString();
  const attacks: InjectedAttack[] = [];
  const run = options.runId;
  // Attack sources differ per run, so a demo re-run minutes later is not suppressed as a repeat.
  const octet = (1 + ([...run].reduce((sum, char) => (sum * 31 + char.charCodeAt(0)) >>> 0, 7) % 200)).toString();

  // Credential stuffing: one IP, 30 leaked accounts, one try each, within two minutes.
  const stuffingIp = `185.220.101.${octet}`;
  for (let n = 0; n < 30; n++) {
    emitter.policy({
      time: at(150 - n * 4),
      actor: { userId: `leaked-${run}-${n}`, consumerId: 'web-checkout' },
      client: { ip: stuffingIp, userAgent: 'python-requests/2.32' },
      policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', authContext: 'basic', group: 'accounts', resource: login() },
      ...labels,
    });
  }
  attacks.push({ name: 'credential stuffing', description: `${stuffingIp} tries 30 accounts once each`, expectedRules: ['credential-stuffing', 'authn-failures-per-ip'], events: 30, actors: [stuffingIp] });

  // Brute force on one account, then a successful login from the same IP: a takeover.
  const victim = `victim-${run}`;
  const bruteIp = `91.198.174.${octet}`;
  for (let n = 0; n < 12; n++) {
    emitter.policy({
      time: at(200 - n * 10),
      actor: { userId: victim, consumerId: 'app-mobile-android' },
      client: { ip: bruteIp, userAgent: 'okhttp/4.12.0' },
      policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', authContext: 'basic', group: 'accounts', resource: login() },
      ...labels,
    });
  }
  emitter.policy({
    time: at(70),
    actor: { userId: victim, consumerId: 'app-mobile-android' },
    client: { ip: bruteIp, userAgent: 'okhttp/4.12.0' },
    policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', authContext: 'basic', group: 'accounts', resource: login() },
    ...labels,
  });
  attacks.push({ name: 'brute force + takeover', description: `12 failed logins for ${victim} from ${bruteIp}, then a success`, expectedRules: ['authn-failures-per-user', 'account-takeover-sequence'], events: 13, actors: [victim, bruteIp] });

  // Impossible travel: London, then Sydney minutes later (addresses geoip places in a city: a
  // country-only answer, such as 1.1.1.9's, never enters a travel).
  const traveller = `traveller-${run}`;
  for (const [secondsAgo, ip] of [[230, '81.2.69.142'], [30, '1.144.110.23']] as const) {
    emitter.device({
      time: at(secondsAgo),
      actor: { userId: traveller },
      client: { ip, userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)' },
      device: { deviceId: `dev-${traveller}`, type: 'mobile', os: 'iOS 18.1', action: 'login', ip },
      ...labels,
    });
  }
  attacks.push({ name: 'impossible travel', description: `${traveller} in London, then Sydney 3m20s later`, expectedRules: ['impossible-travel', 'new-country-for-user'], events: 2, actors: [traveller] });

  // A known user signs in on a new device, then pays: account takeover after phishing.
  const phished = `phished-${run}`;
  const home = homeOf(phished);
  emitter.device({
    time: at(270),
    actor: { userId: phished },
    client: { ip: home.ip, userAgent: home.userAgent },
    device: { deviceId: `dev-${phished}-usual`, type: 'mobile', action: 'login', ip: home.ip },
    ...labels,
  });
  emitter.device({
    time: at(150),
    actor: { userId: phished },
    client: { ip: home.ip, userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' },
    device: { deviceId: `dev-${phished}-unknown`, type: 'desktop', action: 'login', ip: home.ip },
    ...labels,
  });
  emitter.invocation({
    time: at(60),
    actor: { userId: phished, consumerId: 'web-checkout' },
    client: { ip: home.ip },
    invocation: { resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' }, route: '/v2/payments', status: 201, latencyMs: 84, group: 'payments' },
    ...labels,
  });
  attacks.push({ name: 'new device then payment', description: `${phished} logs in on an unknown device and pays 1 minute later`, expectedRules: ['new-device-for-user', 'new-device-then-sensitive-write'], events: 3, actors: [phished] });

  // Enumeration: a partner walks 60 account ids and gets 404s.
  for (let n = 0; n < 60; n++) {
    emitter.invocation({
      time: at(180 - n * 2),
      actor: { consumerId: `partner-scraper-${run}` },
      client: { ip: `46.101.12.${octet}` },
      invocation: { resource: { api: 'accounts-v1', method: 'GET', path: `/v1/accounts/${90_000 + n}` }, route: '/v1/accounts/:id', status: 404, latencyMs: 9, group: 'accounts' },
      ...labels,
    });
  }
  attacks.push({ name: 'enumeration', description: `partner-scraper-${run} walks 60 account ids, all 404`, expectedRules: ['enumeration-per-consumer'], events: 60, actors: [`partner-scraper-${run}`] });

  // A client hammering past its rate limit.
  for (let n = 0; n < 80; n++) {
    emitter.policy({
      time: at(55 - n * 0.5),
      actor: { consumerId: `partner-flood-${run}` },
      client: { ip: `200.160.2.${octet}` },
      policy: { kind: 'rate_limit', name: 'spike-arrest-100rps', outcome: 'fail', reason: 'quota_exceeded', group: 'public', resource: { api: 'catalog-v1', method: 'GET', path: '/v1/products' } },
      ...labels,
    });
  }
  attacks.push({ name: 'rate-limit storm', description: `partner-flood-${run}: 80 rate-limit rejections in 40s`, expectedRules: ['rate-limit-storm-per-consumer', 'rate-limit-storm-per-ip'], events: 80, actors: [`partner-flood-${run}`, `200.160.2.${octet}`] });

  // Single-event attacks. The threat checks run before authentication (as a gateway orders them:
  // refuse the payload before spending an introspection on it), so nothing proves the probe's user
  // on those two requests and their detections are keyed on its IP (docs/correlation.md, trust).
  const probeIp = `8.8.${octet}.77`;
  const probe = { actor: { userId: `probe-${run}`, consumerId: 'partner-globex' }, client: { ip: probeIp }, ...labels };
  emitter.policy({ ...probe, time: at(40), policy: { kind: 'json_threat', name: 'json-threat-protection', outcome: 'fail', reason: 'container_depth_exceeded', group: 'payments', resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' } } });
  emitter.policy({ ...probe, time: at(39), policy: { kind: 'xml_threat', name: 'xml-threat-protection', outcome: 'fail', reason: 'entity_expansion', group: 'legacy', resource: { api: 'legacy-soap', method: 'POST', path: '/soap/accounts' } } });
  emitter.policy({ ...probe, time: at(38), policy: { kind: 'authz', name: 'require-scope', outcome: 'fail', reason: 'missing_scope', scopes: ['admin:write'], authContext: 'oauth2', group: 'admin', resource: { api: 'admin-v1', method: 'DELETE', path: '/admin/v1/users/17' } } });
  emitter.policy({ ...probe, time: at(37), policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', authContext: 'basic', group: 'payments', resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' } } });
  attacks.push({ name: 'threat payloads and policy bypass', description: 'a JSON bomb, an XML entity expansion, an admin-scope probe, basic auth on a 2FA API', expectedRules: ['json-threat-violation', 'xml-threat-violation', 'authz-failure-privileged-scope', 'basic-auth-on-2fa-resource'], events: 4, actors: [`probe-${run}`, probeIp] });

  return attacks;
}
