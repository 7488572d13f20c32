/**
 * policies/kyverno/: every policy folder passes `kyverno test` with the real Kyverno CLI, and the
 * Provenant answers its .kyverno-test/ mocks hold (apiCallResponses) are what a real Provenant answers
 * for the same keys with policies/kyverno/provenant.yaml (registry.example.com served by a real
 * registry holding one fixed image, through a mirror entry).
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, pushManifest, sha256Digest } from '../../harness/oci-push.ts';
import { makeTempDir } from '../../harness/process.ts';
import {
  devCertAgent,
  PROJECT_ROOT,
  startProvenant,
  type RunningProvenant,
} from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { toolPath } from '../../harness/tools.ts';

const run = promisify(execFile);
const POLICIES = path.join(PROJECT_ROOT, 'policies', 'kyverno');

interface MockedCall {
  url: string;
  response: { statusCode?: number; body: { response: { items: { key: string }[] } } };
}

async function policyFolders(): Promise<string[]> {
  const entries = await readdir(POLICIES, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

async function testFiles(): Promise<string[]> {
  const files = await readdir(POLICIES, { recursive: true });
  return files.filter((f) => f.endsWith('kyverno-test.yaml')).map((f) => path.join(POLICIES, f));
}

/** One fixed image (no layers): its digest is the one the mocks name. */
async function pushFixedImage(registryUrl: string): Promise<string> {
  const target = { registryUrl, repository: 'trusted/app' };
  const config = await pushBlob(
    target,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [],
    }),
  );
  await pushManifest(target, 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json');
  return sha256Digest(manifest);
}

describe('the Kyverno policies', () => {
  it.each([
    'provenant-verify-images',
    'provenant-pin-images',
    'provenant-verify-images-clusterpolicy',
    'provenant-pin-images-clusterpolicy',
  ])('%s passes kyverno test, every expected result checked', async (folder) => {
    expect(await policyFolders()).toContain(folder);
    const { stdout } = await run(
      toolPath('kyverno'),
      ['test', path.join(POLICIES, folder), '--detailed-results', '--remove-color'],
      {
        cwd: PROJECT_ROOT,
      },
    );
    // The CLI counts a skipped or unmatched result as passed: each must show as a row that passed.
    expect(stdout).not.toMatch(/Invalid Policy|Want \w+, got|not found in manifest/);
    const summary = /Test Summary: (\d+) tests passed and (\d+) tests failed/.exec(stdout);
    expect(summary?.[2]).toBe('0');
    expect(Number(summary?.[1])).toBeGreaterThan(0);
  });

  describe('mocked Provenant answers', () => {
    let dir: string;
    let registry: RegistryServer;
    let provenant: RunningProvenant;

    beforeAll(async () => {
      dir = await makeTempDir('kyverno-mocks');
      registry = await startDistributionRegistry();
      await pushFixedImage(registry.url);
      const config = parse(await readFile(path.join(POLICIES, 'provenant.yaml'), 'utf8')) as Record<
        string,
        unknown
      >;
      config['registries'] = [
        { host: 'registry.example.com', mirror: registry.host },
        { host: registry.host, insecure: true },
      ];
      const file = path.join(dir, 'provenant.yaml');
      await writeFile(file, stringify(config));
      provenant = await startProvenant([
        'node',
        'bin/provenant.mjs',
        'serve',
        '--config',
        file,
        '--port',
        '0',
      ]);
    });

    afterAll(async () => {
      await provenant?.stop();
      await registry?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('are what a real Provenant answers for the same keys, in every test that mocks a 200', async () => {
      const agent = devCertAgent(provenant);
      let compared = 0;
      try {
        for (const file of await testFiles()) {
          const test = parse(await readFile(file, 'utf8')) as { apiCallResponses?: MockedCall[] };
          for (const mock of test.apiCallResponses ?? []) {
            if ((mock.response.statusCode ?? 200) !== 200 || mock.response.body.response.items.length === 0)
              continue;
            const keys = mock.response.body.response.items.map((i) => i.key);
            const res = await request(`${provenant.url}${new URL(mock.url).pathname}`, {
              method: 'POST',
              dispatcher: agent,
              body: JSON.stringify({ request: { keys } }),
            });
            expect(await res.body.json(), `${path.relative(PROJECT_ROOT, file)} ${mock.url}`).toEqual(
              mock.response.body,
            );
            compared++;
          }
        }
      } finally {
        await agent.close();
      }
      expect(compared).toBe(5);
    });
  });
});
