import { join } from 'node:path';

/** The rule pack shipped with Vigil, used when no rule paths are configured. */
export const DEFAULT_RULES_PATH = join(__dirname, 'rules', 'default');

/**
 * The value lists shipped with Vigil, always loaded first: the default pack's `inList`
 * conditions name them, and operator lists (`VIGIL_LISTS_PATH`) replace or extend them by id.
 */
export const DEFAULT_LISTS_PATH = join(__dirname, 'rules', 'lists', 'default.yaml');
