/**
 * Load-time warnings reach the operator (issue 10 item 6): a policy pattern that can never match a
 * normalised image loads, and the real `provenant` process says so, at start and on reload (serve,
 * through its logger) or on stderr (verify).
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';

const run = promisify(execFile);

function configYaml(pattern: string): string {
  return `validators:
  - { name: deny, type: static, approve: false }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${pattern}", validator: deny }
server: { host: 127.0.0.1 }
`;
}

/** The messages serve logged at level warn (pino's 40), one JSON object a line. */
function loggedWarnings(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level === 40)
    .map((entry) => entry.msg);
}

describe('warnings about patterns that can never match', () => {
  let dir: string;
  let config: string;
  let provenant: RunningProvenant;

  beforeAll(async () => {
    dir = await makeTempDir('warnings');
    config = path.join(dir, 'config.yaml');
    await writeFile(config, configYaml('library/evil*'));
    provenant = await startProvenant([
      'node',
      'bin/provenant.mjs',
      'serve',
      '--config',
      config,
      '--port',
      '0',
    ]);
  });
  afterAll(async () => {
    await provenant?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('are logged by serve at start, naming the pattern and the form that would match', () => {
    expect(loggedWarnings(provenant.output())).toContainEqual(
      expect.stringMatching(/"library\/evil\*" can never match: .*"docker\.io\/library\/evil\*" would match/),
    );
  });

  it('are logged by serve when a reloaded config has one', async () => {
    await writeFile(config, configYaml('docker.io/test:*'));
    await expect
      .poll(() => loggedWarnings(provenant.output()), { timeout: 10_000, interval: 100 })
      .toContainEqual(
        expect.stringMatching(
          /"docker\.io\/test:\*" can never match: .*"docker\.io\/library\/test:\*" would match/,
        ),
      );
  });

  it('are printed on stderr by verify, which still answers on stdout', async () => {
    const other = path.join(dir, 'verify.yaml');
    await writeFile(other, configYaml('team/app'));
    const result = await run(
      'node',
      ['bin/provenant.mjs', 'verify', 'docker.io/team/app:1', '--config', other],
      {
        cwd: PROJECT_ROOT,
      },
    ).then(
      () => {
        throw new Error('expected verify to exit 1 for a denied image');
      },
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('provenant: warning: /policy/1/pattern: "team/app" can never match');
    expect(result.stderr).toContain('"docker.io/team/app" would match');
    expect(result.stdout).toContain('denied   docker.io/team/app:1');
  });
});
