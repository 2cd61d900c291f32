import { join } from 'node:path';

/** The rule pack shipped with Vigil, used when no rule paths are configured. */
export const DEFAULT_RULES_PATH = join(__dirname, 'rules', 'default');
