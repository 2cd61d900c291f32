import { format } from 'node:util';
import type { Logger } from '../platform';

/** The `console` methods a library may call, and the level each becomes. */
const CONSOLE_LEVELS = { error: 'error', warn: 'warn', info: 'info', log: 'info', debug: 'debug' } as const;
type ConsoleMethod = keyof typeof CONSOLE_LEVELS;

/**
 * Sends what libraries print with `console.*` through `logger` as JSON lines (`origin:
 * "console.warn"`), secrets scrubbed like every other line, instead of as plain text among them:
 * a log shipper parsing JSON drops or mangles such a line (ioredis warns with `console.warn` that
 * Redis needs no password when one is set). For long-running commands, whose output is the log.
 * @returns what puts the console back
 */
export function routeConsole(logger: Logger): () => void {
  const saved = new Map<ConsoleMethod, (...args: unknown[]) => void>();
  for (const [method, level] of Object.entries(CONSOLE_LEVELS) as [ConsoleMethod, (typeof CONSOLE_LEVELS)[ConsoleMethod]][]) {
    saved.set(method, console[method].bind(console));
    console[method] = (...args: unknown[]) => logger[level]({ origin: `console.${method}` }, format(...args));
  }
  return () => {
    for (const [method, original] of saved) console[method] = original;
  };
}
