/**
 * policies/gatekeeper with the real opa: `opa check --strict` (Rego v0 and v1 alike, since Gatekeeper
 * parses templates as v0) and `opa test`, both with external_data declared through the capabilities
 * file; then `provenant policy test` on the gatekeeper-library-style suite and samples.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withExternalData } from '../../../provider/src/policy/rego/index.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { toolPath } from '../../harness/tools.ts';

const run = promisify(execFile);
const POLICY_DIR = 'policies/gatekeeper/verified-images';
const SAMPLES = `${POLICY_DIR}/samples`;
const TEMPLATE = 'gatekeeper/templates/provenantverifiedimages.yaml';
/** Only the Rego: opa would load the samples' YAML as data too. */
const REGO = [`${POLICY_DIR}/src.rego`, `${POLICY_DIR}/src_test.rego`];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: PROJECT_ROOT, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const provenant = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> =>
  exec('node', ['bin/provenant.mjs', 'policy', 'test', ...args], { PROVENANT_OPA: toolPath('opa'), ...env });

describe('policies/gatekeeper with opa', () => {
  let dir: string;
  let capabilities: string;

  beforeAll(async () => {
    dir = await makeTempDir('opa-policies');
    const current = JSON.parse(
      (await exec(toolPath('opa'), ['capabilities', '--current'])).stdout,
    ) as unknown;
    const declared = JSON.parse(
      await readFile(path.join(PROJECT_ROOT, 'policies/gatekeeper/external-data.capabilities.json'), 'utf8'),
    ) as { builtins: unknown[] };
    capabilities = path.join(dir, 'capabilities.json');
    const merged = withExternalData(current) as { builtins: unknown[] };
    expect(merged.builtins).toContainEqual(declared.builtins[0]);
    await writeFile(capabilities, JSON.stringify(merged));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes opa check --strict for Rego v0 and v1', async () => {
    const r = await exec(toolPath('opa'), [
      'check',
      '--strict',
      '--v0-v1',
      '--capabilities',
      capabilities,
      POLICY_DIR,
    ]);
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  it('fails opa check without external_data in the capabilities', async () => {
    const r = await exec(toolPath('opa'), ['check', '--strict', `${POLICY_DIR}/src.rego`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/undefined function external_data/);
  });

  it('passes opa test with external_data replaced', async () => {
    const r = await exec(toolPath('opa'), ['test', '--capabilities', capabilities, '-v', ...REGO]);
    expect(r.stdout).toMatch(/PASS: \d+\/\d+/);
    expect(r.stdout).not.toMatch(/FAIL/);
    expect(r.code).toBe(0);
  });
});

describe('provenant policy test', () => {
  const config = `${SAMPLES}/provenant.yaml`;

  it('passes every case of the suite with the samples config', async () => {
    const r = await provenant(['--suite', `${POLICY_DIR}/suite.yaml`, '--config', config, '--json']);
    const results = JSON.parse(r.stdout) as { case: string; passed: boolean; result: { verdict: string } }[];
    expect(results.length).toBeGreaterThanOrEqual(10);
    expect(results.filter((c) => !c.passed)).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('gives deny, warn and dryrun verdicts naming the container, the image and the error', async () => {
    const verdict = async (constraint: string): Promise<Result> =>
      provenant([
        '--template',
        TEMPLATE,
        '--constraint',
        `${SAMPLES}/${constraint}/constraint.yaml`,
        `${SAMPLES}/verified-images/example_disallowed.yaml`,
        '--config',
        config,
      ]);
    const deny = await verdict('verified-images');
    expect(deny.stdout).toMatch(/^denied +Pod\/default\/untrusted$/m);
    expect(deny.stdout).toMatch(
      /\[deny\]: containers "app" has an untrusted image "registry\.example\.com\/untrusted\/app@sha256:[0-9a-f]{64}": POLICY_STATIC_DENY: /,
    );
    expect(deny.code).toBe(1);
    expect((await verdict('warn')).stdout).toMatch(/^warned +Pod\/default\/untrusted$/m);
    expect((await verdict('dryrun')).stdout).toMatch(/^allowed +Pod\/default\/untrusted\n.*\[dryrun\]/m);
  });

  it('fails closed, or open with failurePolicy Ignore, when Provenant is unavailable', async () => {
    const allowed = `${SAMPLES}/verified-images/example_allowed.yaml`;
    const closed = await provenant([
      '--unavailable',
      '--template',
      TEMPLATE,
      '--constraint',
      `${SAMPLES}/verified-images/constraint.yaml`,
      allowed,
    ]);
    expect(closed.stdout).toMatch(/^denied +Pod\/default\/trusted$/m);
    expect(closed.stdout).toMatch(
      /containers "app": image ".*" could not be verified, Provenant is unavailable/,
    );
    expect(closed.code).toBe(1);
    const open = await provenant([
      '--unavailable',
      '--template',
      TEMPLATE,
      '--constraint',
      `${SAMPLES}/fail-open/constraint.yaml`,
      allowed,
    ]);
    expect(open.stdout).toMatch(/^allowed +Pod\/default\/trusted\n$/);
    expect(open.code).toBe(0);
  });

  it('reports a registry outage as Provenant does, a system_error the constraint fails closed on', async () => {
    const dir = await makeTempDir('policy-test-outage');
    try {
      const config = path.join(dir, 'config.yaml');
      await writeFile(
        config,
        `validators:\n  - { name: allow, type: static, approve: true }\npolicy:\n  - { pattern: "*:*", validator: allow }\nregistries:\n  - { host: "127.0.0.1:1", insecure: true }\n`,
      );
      const manifest = path.join(dir, 'pod.yaml');
      await writeFile(
        manifest,
        'apiVersion: v1\nkind: Pod\nmetadata: { name: p, namespace: default }\nspec:\n  containers: [{ name: app, image: "127.0.0.1:1/app:v1" }]\n',
      );
      const r = await provenant(['--template', TEMPLATE, manifest, '--config', config]);
      expect(r.stdout).toMatch(
        /^denied +Pod\/default\/p\n.*containers "app": image "127\.0\.0\.1:1\/app:v1" could not be verified, Provenant is unavailable: REGISTRY_UNREACHABLE: /m,
      );
      expect(r.code).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with a clear message when opa is missing', async () => {
    const r = await provenant(['--template', TEMPLATE, `${SAMPLES}/verified-images/example_allowed.yaml`], {
      PROVENANT_OPA: '/nonexistent/opa',
    });
    expect(r.stderr).toMatch(/POLICY_TEST_OPA_MISSING: expected the opa binary at "\/nonexistent\/opa"/);
    expect(r.code).toBe(2);
  });

  it('exits 2 naming a file that is not a manifest', async () => {
    const r = await provenant(['--template', TEMPLATE, `${POLICY_DIR}/src.rego`]);
    expect(r.stderr).toMatch(/POLICY_TEST_INVALID_INPUT: /);
    expect(r.code).toBe(2);
  });
});
