import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { DEFAULT_RULES_PATH, loadRuleSet } from '../../detectors';
import { loadConfig } from '../../platform';
import { loadFixtures, runFixtureCase } from '../../scripts/rule-fixtures';

/**
 * Every rule's fixtures (detectors/rules/fixtures/<rule>.yaml) through the production engine on
 * the real Redis: the same code path as the pipeline and `vigil replay`. `vigil rules test`
 * runs this file.
 */
const FIXTURES = join(__dirname, '..', '..', 'detectors', 'rules', 'fixtures');
const ruleSet = loadRuleSet([DEFAULT_RULES_PATH]);
const fixtures = loadFixtures(FIXTURES);

describe('rule fixtures', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(loadConfig().redis.url);
  });

  afterAll(async () => {
    await redis.quit();
  });

  it('cover every rule of the default pack', () => {
    const covered = new Set(fixtures.map((fixture) => fixture.rule));
    expect(ruleSet.rules.map((compiled) => compiled.rule.id).filter((id) => !covered.has(id))).toEqual([]);
  });

  describe.each(fixtures.map((fixture) => [fixture.rule, fixture] as const))('%s', (_rule, fixture) => {
    it.each(fixture.cases.map((testCase, index) => [testCase.name, index] as const))('%s', async (_name, index) => {
      // A fixture that names list files runs with them over the shipped lists.
      const rules = fixture.lists ? loadRuleSet([DEFAULT_RULES_PATH], { lists: fixture.lists.map((file) => join(dirname(fixture.file), file)) }) : ruleSet;
      const detections = await runFixtureCase(redis, rules, fixture, index);
      const expected = fixture.cases[index]?.expect ?? [];
      expect(detections).toHaveLength(expected.length);
      expected.forEach((partial, position) => expect(detections[position]).toMatchObject(partial));
    });
  });
});
