import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { loadConfig } from '../../src/cli/load.ts';
import { main } from '../../src/cli/main.ts';
import { makeTempDir } from '../config/helpers.ts';

const CONFIG = `validators:
  - { name: deny, type: static, approve: false }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "library/evil*", validator: deny }
`;

describe('load-time warnings on the command line (issue 10 item 6)', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await makeTempDir();
    file = join(dir, 'config.yaml');
    await writeFile(file, CONFIG);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the config file with its warnings', () => {
    expect(loadConfig(file).warnings).toEqual([
      expect.stringContaining('/policy/1/pattern: "library/evil*"'),
    ]);
  });

  it('loads the embedded config without warnings', () => {
    expect(loadConfig(undefined).warnings).toEqual([]);
  });

  it('prints them to stderr from provenant verify, keeping stdout for the verdicts', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['verify', 'docker.io/library/evil:1', '--config', file])).toBe(1);
    const errText = stderr.mock.calls.map(([chunk]) => String(chunk)).join('');
    const outText = stdout.mock.calls.map(([chunk]) => String(chunk)).join('');
    expect(errText).toMatch(
      /^provenant: warning: \/policy\/1\/pattern: "library\/evil\*" can never match: .*"docker\.io\/library\/evil\*" would match\n$/,
    );
    expect(outText).toContain('denied   docker.io/library/evil:1');
    expect(outText).not.toContain('warning');
  });
});
