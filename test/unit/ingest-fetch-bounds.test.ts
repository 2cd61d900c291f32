import { ingestConsumerConfig } from '../../ingest';
import { ConfigError, loadConfig } from '../../platform';

describe('what one fetch of the ingest consumer may bring (VIGIL_FETCH_*)', () => {
  it('is 256 KiB per partition (memory bounded on a backlog) and 50 MiB in all by default', () => {
    const options = ingestConsumerConfig(loadConfig({}));
    expect(options.maxBytesPerPartition).toBe(256 * 1024);
    expect(options.maxBytes).toBe(50 * 1024 * 1024);
  });

  it('takes the operator’s bounds', () => {
    const options = ingestConsumerConfig(loadConfig({ VIGIL_FETCH_MAX_BYTES_PER_PARTITION: '8388608', VIGIL_FETCH_MAX_BYTES: '4194304' }));
    expect(options.maxBytesPerPartition).toBe(8_388_608);
    expect(options.maxBytes).toBe(4_194_304);
  });

  it.each([
    ['VIGIL_FETCH_MAX_BYTES_PER_PARTITION', '1024'],
    ['VIGIL_FETCH_MAX_BYTES_PER_PARTITION', '134217728'],
    ['VIGIL_FETCH_MAX_BYTES', '0'],
    ['VIGIL_FETCH_MAX_BYTES', 'lots'],
  ])('refuses %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
