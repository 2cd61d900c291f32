import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkArguments, main } from '../../scripts/cli';
import { parseRoles } from '../../app';

describe('the CLI checks a command\'s arguments before it loads the configuration or connects', () => {
  let output: string[];
  let errors: string[];
  beforeEach(() => {
    output = [];
    errors = [];
    jest.spyOn(console, 'log').mockImplementation((text: string) => void output.push(text));
    jest.spyOn(console, 'error').mockImplementation((text: string) => void errors.push(text));
  });
  afterEach(() => jest.restoreAllMocks());

  // A missing --topic printed one usage line naming neither it nor the formats; --help printed the global help.
  it('vigil adapt names the option missing, and --help lists every format with what it reads', async () => {
    expect(await main(['adapt', '--format', 'wso2'])).toBe(2);
    expect(errors[0]?.split('\n')[0]).toBe('vigil adapt: --topic is required');
    expect(await main(['adapt'])).toBe(2);
    expect(errors[1]?.split('\n')[0]).toBe('vigil adapt: --format and --topic are required');
    expect(await main(['adapt', '--help'])).toBe(0);
    const help = output.join('\n');
    expect(help).toMatch(/^usage: vigil adapt --format FORMAT --topic RAW_TOPIC/);
    for (const format of ['kong', 'apisix', 'envoy', 'otlp', 'wso2', 'tyk']) expect(help).toMatch(new RegExp(`^  ${format} +\\S`, 'm'));
  });

  it.each([['--version'], ['version']])('%s prints the version of package.json and exits 0', async (flag) => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(await main([flag])).toBe(0);
    expect(output).toEqual([`vigil ${version}`]);
    expect(errors).toEqual([]);
  });

  // `vigil evaluate --help` printed the general usage, which names neither --resolve-after-ms nor --settle-ms.
  it.each([
    [['evaluate'], /^usage: vigil evaluate .*--resolve-after-ms N.*--settle-ms N/],
    [['dashboards', 'install'], /^usage: vigil dashboards install --kibana URL[\s\S]*KIBANA_API_KEY/],
  ])('%s --help prints its own usage, every option', async (command, usage) => {
    expect(await main([...command, '--help'])).toBe(0);
    expect(output.join('\n')).toMatch(usage);
    expect(errors).toEqual([]);
  });

  it.each([['run'], ['intake'], ['topics', 'ensure'], ['demo', '--no-stack'], ['replay', '--from', 'now-1h']])(
    '%s … --help prints the usage and exits 0, starting nothing',
    async (...command) => {
      expect(await main([...command, '--help'])).toBe(0);
      expect(output.join('\n')).toMatch(/^vigil: security event logging/);
      expect(errors).toEqual([]);
    },
  );

  it('says, from any command, which VIGIL_ variables it ignores (a misspelt one left its setting at the default without a word)', async () => {
    process.env.VIGIL_TOPIC_DEADLETER = 'prod.dl';
    try {
      await main(['stack']);
      expect(errors[0]).toMatch(/^vigil: note: ignoring .*Vigil does not read: .*VIGIL_TOPIC_DEADLETER \(did you mean VIGIL_TOPIC_DEADLETTER\?\).*; see docs\/configuration\.md$/);
    } finally {
      delete process.env.VIGIL_TOPIC_DEADLETER;
    }
    errors.length = 0;
    await main(['stack']);
    expect(errors.some((line) => line.includes('VIGIL_TOPIC_DEADLETER'))).toBe(false);
  });

  it('refuses an option given twice (only the first was read), and a --events that is not plainly an integer', async () => {
    expect(await main(['report', '--from', 'bogus', '--from', 'now-1h', '--to', 'now', '--out', 'x.html'])).toBe(2);
    expect(errors[0]).toMatch(/^vigil report: --from given twice \("bogus" and "now-1h"\): give it once/);
    for (const events of ['1e3', '0x10', '12.0']) {
      errors.length = 0;
      expect(await main(['demo', '--no-stack', '--events', events])).toBe(2);
      expect(errors[0]).toBe('vigil demo: --events must be an integer between 10 and 1000000');
    }
  });

  it('refuses an option the command does not take, naming it, with exit 2', async () => {
    expect(await main(['run', '--bogus-flag'])).toBe(2);
    expect(errors[0]).toMatch(/^vigil run: unknown option --bogus-flag\n\nvigil: security event logging/);
  });

  // One process per role (the alerter apart from ingest) had no way to be asked for from the CLI.
  it.each([
    ['', 'no role given; name one or more of ingest, alerting, intake'],
    [' , ', 'no role given; name one or more of ingest, alerting, intake'],
    ['ingest,alert', 'unknown role "alert"; the roles are ingest, alerting, intake'],
    ['Ingest,notify', 'unknown roles "Ingest", "notify"; the roles are ingest, alerting, intake'],
    ['ingest,ingest', 'role "ingest" named twice'],
  ])('vigil run --roles %j is refused with exit 2, naming what is wrong, before anything starts', async (roles, problem) => {
    expect(await main(['run', '--roles', roles])).toBe(2);
    expect(errors).toEqual([`vigil run: --roles: ${problem}`]);
  });

  it.each([
    ['ingest', ['ingest']],
    ['alerting', ['alerting']],
    [' alerting , ingest ', ['ingest', 'alerting']],
    ['intake,alerting,ingest', ['ingest', 'alerting', 'intake']],
  ])('--roles %j runs %j', (text, roles) => {
    expect(parseRoles(text)).toEqual({ roles });
  });

  it('refuses a replay time Elasticsearch would not take, before reading anything', async () => {
    expect(await main(['replay', '--from', 'bogus', '--to', 'now'])).toBe(2);
    expect(await main(['replay', '--from', 'now-1w', '--to', 'yesterday'])).toBe(2);
    expect(errors).toEqual([
      'vigil replay: "bogus" is not a time: use ISO 8601 (2026-05-01T10:00:00Z; without a zone, UTC), epoch milliseconds, or date math (now, now-2h, now-1d/d)',
      'vigil replay: "yesterday" is not a time: use ISO 8601 (2026-05-01T10:00:00Z; without a zone, UTC), epoch milliseconds, or date math (now, now-2h, now-1d/d)',
    ]);
  });

  // Epoch seconds were taken (Elasticsearch reads them as milliseconds: 1970) and an inverted range
  // ran, each reporting 0 events and exiting 0.
  it('refuses epoch seconds and a range whose start is not before its end, before reading anything', async () => {
    expect(await main(['replay', '--from', '1714557600', '--to', 'now'])).toBe(2);
    expect(await main(['replay', '--from', 'now', '--to', 'now-2h'])).toBe(2);
    expect(await main(['replay', '--from', '2026-05-01T10:00:00Z', '--to', '1714557600000'])).toBe(2);
    expect(errors).toEqual([
      'vigil replay: "1714557600" is not a time (1714557600 looks like epoch seconds: write 1714557600000): use ISO 8601 (2026-05-01T10:00:00Z; without a zone, UTC), epoch milliseconds, or date math (now, now-2h, now-1d/d)',
      'vigil replay: --from (now) must be before --to (now-2h): the range holds no event',
      'vigil replay: --from (2026-05-01T10:00:00Z) must be before --to (1714557600000): the range holds no event',
    ]);
  });

  it.each([
    ['demo', ['--events'], 'vigil demo: --events needs a value'],
    ['run', ['--roles'], 'vigil run: --roles needs a value'],
    ['run', ['now'], 'vigil run: unexpected argument "now"'],
    ['topics', ['ensure', 'extra'], 'vigil topics: unexpected argument "extra"'],
    ['evaluate', ['--sed', '7'], 'vigil evaluate: unknown option --sed'],
    ['adapt', ['--format', 'kong', '--topik', 'raw'], 'vigil adapt: unknown option --topik'],
    // Each subcommand takes its own options only.
    ['rules', ['test', 'my-rules', '--fixture', 'x'], 'vigil rules test: unknown option --fixture'],
    ['rules', ['validate', 'a.yaml', '--rules', 'b.yaml'], 'vigil rules validate: unknown option --rules'],
    ['rules', ['coverage', '--from', 'now-1h', 'x.yaml'], 'vigil rules coverage: unexpected argument "x.yaml"'],
    ['rules', ['lint'], 'vigil rules: unexpected argument "lint"'],
    ['dashboards', ['export', '--kibana', 'http://kibana:5601'], 'vigil dashboards export: unknown option --kibana'],
    ['schemas', ['export', '--kibana', 'x'], 'vigil schemas export: unknown option --kibana'],
  ])('%s %j: %s', (command, rest, message) => {
    expect(checkArguments(command, rest)).toBe(message);
  });

  it.each([
    ['adapt', ['--format', 'kong', '--topic', 'vigil.raw.kong']],
    ['rules', ['validate', 'detectors/rules/default', 'more.yaml', '--lists', 'a.yaml']],
    ['rules', ['coverage', '--from', 'now-2h', '--to', 'now', '--json']],
    ['demo', ['--events', '500', '--via', 'kong', '--no-stack']],
    ['run', ['--roles', 'ingest']],
    ['evaluate', ['--seed', '7', '--json', '--keep', '--speed', '60']],
    ['deadletters', ['redrive', '--reason', 'schema_invalid', '--dry-run']],
    ['rules', ['test']],
    ['rules', ['validate', 'a.yaml']],
    ['dashboards', ['install', '--kibana', 'http://kibana:5601', '--space', 'sec']],
    ['dashboards', ['export', '--out', 'dashboards/vigil.ndjson']],
    ['schemas', ['export', '--out', 'schemas/json']],
  ])('takes %s %j', (command, rest) => {
    expect(checkArguments(command, rest)).toBeUndefined();
  });
});
