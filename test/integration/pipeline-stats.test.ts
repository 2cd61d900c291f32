import { Client } from '@elastic/elasticsearch';
import { createPipelineStatsReporter, type PipelineCounter } from '../../app';
import { allPanels, panelQuery, panelRows, viewPatterns } from '../../dashboards';
import { installTemplates } from '../../platform';
import { pipelineIndexName, type PipelineMetricDocument } from '../../schemas';
import { isolatedConfig, openStack, testLogger, type Stack } from '../support/harness';

/**
 * The pipeline metrics writer on the real Elasticsearch, with running totals the test sets: each
 * document holds what moved since the previous one, a restarted process starts from zero, the
 * sums are the totals, and what Elasticsearch does not take is kept. The interval is an hour, so
 * only the test's flush() and stop() write.
 */
describe('pipeline metrics in Elasticsearch', () => {
  let stack: Stack;
  const deadLetters = allPanels().find((panel) => panel.id === 'dead-letters-by-reason')!;

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_PIPELINE_STATS_INTERVAL_MS: '3600000', VIGIL_INSTANCE_NAME: 'it-instance' }));
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  /** A writer whose totals are what `totals` holds when it reads them. */
  function writer(totals: Map<string, number>, elasticsearch: Client = stack.elasticsearch): ReturnType<typeof createPipelineStatsReporter> {
    const read = (): PipelineCounter[] => [...totals].map(([reason, total]) => ({ metric: 'dead_letters', labels: { reason }, total }));
    return createPipelineStatsReporter({ elasticsearch, config: stack.config, logger: testLogger, roles: ['ingest'], read });
  }

  async function documents(): Promise<PipelineMetricDocument[]> {
    await stack.elasticsearch.indices.refresh({ index: viewPatterns(stack.config.indices.prefix).pipeline });
    const response = await stack.elasticsearch.search<PipelineMetricDocument>({ index: viewPatterns(stack.config.indices.prefix).pipeline, size: 100, sort: [{ '@timestamp': 'asc' }, { 'vigil.pipeline.reason': 'asc' }] });
    return response.hits.hits.flatMap((hit) => (hit._source ? [hit._source] : []));
  }

  it('writes deltas per interval, nothing for a quiet one, the last at stop, and a restart from zero', async () => {
    const first = new Map([['not_json', 3]]);
    const running = writer(first);
    running.start();
    await running.flush();
    first.set('not_json', 5).set('too_large', 1);
    await running.flush();
    await running.flush(); // nothing moved
    first.set('not_json', 6);
    await running.stop();
    expect(running.stats()).toStrictEqual({ written: 4, pending: 0, dropped: 0 });

    // The process restarts: its counters start from zero again.
    const restarted = writer(new Map([['not_json', 2]]));
    restarted.start();
    await restarted.stop();

    const written = await documents();
    expect(written.map((document) => [document.vigil.pipeline.reason, document.vigil.pipeline.count])).toStrictEqual([
      ['not_json', 3],
      ['not_json', 2],
      ['too_large', 1],
      ['not_json', 1],
      ['not_json', 2],
    ]);
    expect(new Set(written.map((document) => document.vigil.pipeline.run_id)).size).toBe(2);
    expect(written.every((document) => document.service.node.name === 'it-instance' && document.event.kind === 'metric' && document.event.start <= document.event.end)).toBe(true);

    // The dashboard panel's query sums them to the totals of both runs.
    const response = await stack.elasticsearch.search({ index: viewPatterns(stack.config.indices.prefix).pipeline, ...panelQuery(deadLetters, { from: 'now-1h', to: 'now+1h' }) });
    const total = typeof response.hits.total === 'number' ? response.hits.total : (response.hits.total?.value ?? 0);
    const sums: Record<string, number> = {};
    for (const row of panelRows(deadLetters, response.aggregations, total)) sums[row.keys[1] ?? ''] = (sums[row.keys[1] ?? ''] ?? 0) + (row.metrics[0] ?? 0);
    expect(sums).toStrictEqual({ not_json: 8, too_large: 1 });
  });

  it('keeps what Elasticsearch did not take, and stop still returns', async () => {
    const away = new Client({ node: 'http://127.0.0.1:1', maxRetries: 0, requestTimeout: 2000 });
    const reporter = writer(new Map([['not_json', 4]]), away);
    reporter.start();
    await reporter.flush();
    expect(reporter.stats()).toStrictEqual({ written: 0, pending: 1, dropped: 0 });
    await reporter.stop();
    expect(reporter.stats().pending).toBe(1);
    await away.close();
  });

  it('has a strict template: a field it does not name is refused', async () => {
    const index = pipelineIndexName(stack.config.indices.prefix, new Date().toISOString());
    await expect(stack.elasticsearch.index({ index, document: { '@timestamp': new Date().toISOString(), vigil: { pipeline: { metric: 'dead_letters', count: 1, stray: 'x' } } } })).rejects.toThrow(/strict_dynamic_mapping_exception/);
    const mapping = await stack.elasticsearch.indices.getFieldMapping({ index, fields: ['vigil.pipeline.count', 'vigil.pipeline.reason', 'event.duration'] });
    const fields = mapping[index]?.mappings ?? {};
    const typeOf = (field: string): unknown => (fields[field]?.mapping as Record<string, { type?: string }> | undefined)?.[field.split('.').pop() ?? field]?.type;
    expect([typeOf('vigil.pipeline.count'), typeOf('vigil.pipeline.reason'), typeOf('event.duration')]).toStrictEqual(['long', 'keyword', 'long']);
  });
});
