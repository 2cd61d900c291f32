/* eslint-disable no-console -- this test is about what the console methods do once routed */
import { createLogger } from '../../platform';
import { routeConsole } from '../../scripts/route-console';

// ioredis printed "[WARN] This Redis server's `default` user does not require a password, but a
// password was supplied" as a plain line among `vigil run`'s JSON log lines.
describe('routeConsole: what libraries print goes out as JSON log lines', () => {
  const original = { ...console };
  afterEach(() => Object.assign(console, original));

  function routed(secrets: readonly string[] = []): { lines: string[]; restore: () => void } {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', secrets, destination: { write: (line: string) => void lines.push(line) } });
    return { lines, restore: routeConsole(logger) };
  }

  it('logs each console method at its level, formatted as console would, naming where it came from', () => {
    const { lines, restore } = routed();
    console.warn("[WARN] This Redis server's %s user does not require a password", '`default`');
    console.error('failed:', { code: 42 });
    console.log('plain', 7);
    console.info('info');
    console.debug('debug');
    restore();
    expect(lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 40, origin: 'console.warn', msg: "[WARN] This Redis server's `default` user does not require a password" }),
      expect.objectContaining({ level: 50, origin: 'console.error', msg: 'failed: { code: 42 }' }),
      expect.objectContaining({ level: 30, origin: 'console.log', msg: 'plain 7' }),
      expect.objectContaining({ level: 30, origin: 'console.info', msg: 'info' }),
      expect.objectContaining({ level: 20, origin: 'console.debug', msg: 'debug' }),
    ]);
  });

  it('scrubs secrets from what is printed, as from every other line', () => {
    const { lines, restore } = routed(['hunter2-password']);
    console.warn('AUTH hunter2-password refused');
    restore();
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('hunter2-password');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ msg: 'AUTH [redacted] refused' });
  });

  it('puts the console back', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { lines, restore } = routed();
    console.warn('routed');
    expect(warn).not.toHaveBeenCalled();
    restore();
    console.warn('after');
    expect(lines).toHaveLength(1);
    expect(warn.mock.calls).toEqual([['after']]);
    warn.mockRestore();
  });
});
