import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../../platform';
import { DEFAULT_FIXTURES_PATH, loadFixtures, runRuleTests } from '../../scripts/rule-fixtures';
import { main } from '../../scripts/cli';

// A folder of no fixture file ran nothing, printed "0 cases: 0 passed, 0 failed" and exited 0:
// a CI gate passed with nothing tested. Everything here fails before Redis is needed.
describe('vigil rules test: the fixture files of a folder', () => {
  const shipped = join(DEFAULT_FIXTURES_PATH, 'authn-failures-per-user.yaml');
  let folder: string;
  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-fixtures-'));
  });
  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  it('refuses a folder that holds no fixture file, naming it', async () => {
    expect(() => loadFixtures(folder)).toThrow(new ValidationError(`no fixture file in ${folder}`, ['it holds no .yaml, .yml or .json file, so no case would run']));
    writeFileSync(join(folder, 'notes.txt'), 'not a fixture');
    expect(() => loadFixtures(folder)).toThrow(ValidationError);
    await expect(runRuleTests({ fixtures: [DEFAULT_FIXTURES_PATH, folder], print: () => undefined })).rejects.toThrow(`no fixture file in ${folder}`);
    await expect(runRuleTests({ fixtures: [], print: () => undefined })).rejects.toThrow('no fixture case to run');
  });

  it('exits non-zero from the command line, saying why', async () => {
    const errors: string[] = [];
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    jest.spyOn(console, 'error').mockImplementation((text: string) => void errors.push(text));
    expect(await main(['rules', 'test', join(__dirname, '..', '..', 'detectors', 'rules', 'default'), '--fixtures', folder])).toBe(1);
    expect(errors).toEqual([`vigil rules test: no fixture file in ${folder}: it holds no .yaml, .yml or .json file, so no case would run`]);
  });

  it('reads the extensions rule folders take, in any case: .yaml, .yml, .YAML and .json', () => {
    copyFileSync(shipped, join(folder, 'a.YAML'));
    copyFileSync(shipped, join(folder, 'b.yml'));
    writeFileSync(join(folder, 'c.json'), JSON.stringify(parseYaml(readFileSync(shipped, 'utf8'), { merge: true })));
    const fixtures = loadFixtures(folder);
    expect(fixtures.map(({ file }) => file)).toEqual(['a.YAML', 'b.yml', 'c.json'].map((name) => join(folder, name)));
    expect(new Set(fixtures.map(({ rule }) => rule))).toEqual(new Set(['authn-failures-per-user']));
  });

  // Read as a rule file is read (parseRuleFileText): a leading byte-order mark (Windows editors,
  // PowerShell 5.1) dropped, and a .json file read as JSON, a key written twice in one object refused.
  it('reads a fixture file as a rule file is read: a byte-order mark dropped, a key written twice in a .json one refused, naming the file and the key', () => {
    const text = readFileSync(shipped, 'utf8');
    const json = JSON.stringify(parseYaml(text, { merge: true }));
    writeFileSync(join(folder, 'a.yaml'), `\uFEFF${text}`);
    writeFileSync(join(folder, 'b.json'), `\uFEFF${json}`);
    expect(loadFixtures(folder).map(({ rule }) => rule)).toEqual(['authn-failures-per-user', 'authn-failures-per-user']);
    writeFileSync(join(folder, 'b.json'), json.replace('"rule":', '"rule":"another-rule","rule":'));
    expect(() => loadFixtures(folder)).toThrow(
      new ValidationError(`invalid fixture ${join(folder, 'b.json')}`, ['rule: the key rule is written twice in one object; JSON would keep the last one without a word (YAML refuses it too): keep one']),
    );
  });
});
