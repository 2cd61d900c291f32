import { createHash } from 'node:crypto';
import { SCRIPT_NAMES, commandName, isBatchScript, scriptSource, type ScriptName, type ScriptSource } from '../../detectors';

/**
 * The content of each Lua script as registered (lib/batch.lua included for batch scripts), pinned
 * with the version its file declares. Redis runs a command by name: two Vigil versions sharing a
 * Redis must never run different Lua under one name, so any edit needs a new `-- version:`.
 * When this test fails after an edit: bump the file's version line, then pin the new hash here.
 */
const PINNED: Record<ScriptName, { version: number; sha256: string }> = {
  windowAdd: { version: 3, sha256: '7af9739c26c6b000' },
  distinctAdd: { version: 3, sha256: '23a357ce0fc81c37' },
  distinctShare: { version: 3, sha256: '5f9bf4d07d165fea' },
  sequenceAdd: { version: 2, sha256: '3817c92e3762c328' },
  firstSeen: { version: 2, sha256: '3c527a8b0d1ad6c5' },
  locationAdd: { version: 1, sha256: 'be1f068a1e4669b5' },
  surgeTick: { version: 6, sha256: '7070f5cdba33d957' },
  claimFiring: { version: 1, sha256: '4cd6e47351219c05' },
  alertHold: { version: 2, sha256: '47ca3f8942a785dc' },
  alertRelease: { version: 2, sha256: 'ba8a8373bde1e46d' },
  alertFold: { version: 5, sha256: '914c6d8734113cc7' },
  alertSettle: { version: 2, sha256: '9545c584f1d37f44' },
  alertSilence: { version: 2, sha256: '9efd9bbcf0c9956a' },
  alertHeldClaim: { version: 1, sha256: 'bd4fdb3820d2e555' },
  alertHeldClear: { version: 2, sha256: '1a9a8f2ad32f2540' },
  alertLinksPrune: { version: 1, sha256: 'febe5cbc5474736d' },
  noteDevice: { version: 2, sha256: '597420a167b40330' },
  readContext: { version: 2, sha256: '36a2e1a47ac5c871' },
  noteRequest: { version: 3, sha256: '329f06693a766861' },
  readRequest: { version: 3, sha256: '3fbf1596bab46b4f' },
  groupSwap: { version: 1, sha256: 'ebd799fba199318a' },
  riskAdd: { version: 2, sha256: 'c4343e31e2acc6f8' },
};

/** A checkout's line endings are no change of meaning. */
const digest = (lua: string): string => createHash('sha256').update(lua.replace(/\r\n/g, '\n')).digest('hex').slice(0, 16);

/** What is wrong with a script against its pin, or undefined. */
function problem(script: ScriptName, source: ScriptSource = scriptSource(script)): string | undefined {
  const { file, version, lua } = source;
  const pinned = PINNED[script];
  const hash = digest(lua);
  if (hash === pinned.sha256 && version === pinned.version) return undefined;
  if (version === pinned.version) {
    return `${file}${isBatchScript(script) ? ' (or lib/batch.lua, which it includes)' : ''} changed but still declares version ${version}: bump its "-- version:" line (the command becomes vigil_${script}_v${version + 1}), then pin { version: ${version + 1}, sha256: <new hash> } in test/unit/lua-versions.test.ts`;
  }
  if (version < pinned.version) return `${file} declares version ${version}, below the pinned ${pinned.version}: versions only go up`;
  return `${file} is now version ${version}: pin { version: ${version}, sha256: '${hash}' } in test/unit/lua-versions.test.ts`;
}

describe('Lua script versions', () => {
  it('pins every registered script, and nothing else', () => {
    expect(Object.keys(PINNED).sort()).toEqual([...SCRIPT_NAMES].sort());
  });

  it.each(SCRIPT_NAMES)('%s: its content matches the version it declares', (script) => {
    expect(problem(script)).toBeUndefined();
  });

  it('registers each script under its declared version', () => {
    expect(commandName('windowAdd')).toBe(`vigil_windowAdd_v${scriptSource('windowAdd').version}`);
  });

  it('fails with a message naming the bump when a script is edited in place', () => {
    const source = scriptSource('claimFiring');
    expect(problem('claimFiring', { ...source, lua: `${source.lua}\n-- an edit` })).toMatch(
      /claimFiring-1\.lua changed but still declares version 1: bump its "-- version:" line/,
    );
    expect(problem('claimFiring', { ...source, version: 2, lua: `${source.lua}\n-- an edit` })).toMatch(/now version 2: pin \{ version: 2, sha256: '[0-9a-f]{16}' \}/);
    expect(problem('claimFiring', { ...source, version: 0 })).toMatch(/versions only go up/);
  });
});
