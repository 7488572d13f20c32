/**
 * Compiles a template's Rego to WASM with the real `opa` binary (`opa build -t wasm`): opa-wasm runs
 * what OPA compiles, and OPA is what Gatekeeper embeds, so there is no second Rego implementation here.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { ProvenantError } from '../../types/errors.ts';
import { withExternalData } from './capabilities.ts';

const run = promisify(execFile);
const OPA_TIMEOUT_MS = 60_000;
const OPA_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** PROVENANT_OPA, else `opa` on PATH. */
export function opaCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.PROVENANT_OPA ?? 'opa';
}

async function opa(command: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      timeout: OPA_TIMEOUT_MS,
      maxBuffer: OPA_MAX_OUTPUT_BYTES,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new ProvenantError(
        'POLICY_TEST_OPA_MISSING',
        `expected the opa binary at "${command}" (PROVENANT_OPA, or opa on PATH) to compile Rego to WASM; install OPA v1 from https://www.openpolicyagent.org/docs/#running-opa`,
        { cause: err },
      );
    }
    throw new ProvenantError(
      'POLICY_TEST_COMPILE_FAILED',
      `opa ${args[0] ?? ''} failed: ${(e.stderr ?? e.message).trim()}`,
      { cause: err },
    );
  }
}

/** The policy.wasm of `opa build -t wasm` for the given entrypoints (slash paths). */
export async function compileToWasm(rego: string, entrypoints: readonly string[]): Promise<Buffer> {
  const command = opaCommand();
  const dir = await mkdtemp(path.join(tmpdir(), 'provenant-rego-'));
  try {
    const capabilities = withExternalData(JSON.parse(await opa(command, ['capabilities', '--current'])));
    await writeFile(path.join(dir, 'capabilities.json'), JSON.stringify(capabilities));
    await writeFile(path.join(dir, 'policy.rego'), rego);
    const entry = entrypoints.flatMap((e) => ['-e', e]);
    const args = [
      'build',
      '-t',
      'wasm',
      ...entry,
      '--capabilities',
      'capabilities.json',
      '-o',
      'bundle.tar.gz',
      'policy.rego',
    ];
    await opa(command, args, dir);
    const wasm = fileInTar(gunzipSync(await readFile(path.join(dir, 'bundle.tar.gz'))), '/policy.wasm');
    if (wasm === undefined)
      throw new ProvenantError('POLICY_TEST_COMPILE_FAILED', 'opa build wrote no /policy.wasm');
    return wasm;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const TAR_BLOCK_BYTES = 512;

/** A regular file of a POSIX ustar archive (the format opa build writes), by name. */
export function fileInTar(tar: Buffer, name: string): Buffer | undefined {
  for (let offset = 0; offset + TAR_BLOCK_BYTES <= tar.length;) {
    const header = tar.subarray(offset, offset + TAR_BLOCK_BYTES);
    if (header.every((b) => b === 0)) return undefined;
    const field = (start: number, length: number): string =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const prefix = field(345, 155);
    const entry = prefix === '' ? field(0, 100) : `${prefix}/${field(0, 100)}`;
    const body = offset + TAR_BLOCK_BYTES;
    if ((entry === name || entry === name.replace(/^\//, '')) && field(156, 1) !== '5') {
      return Buffer.from(tar.subarray(body, body + size));
    }
    offset = body + Math.ceil(size / TAR_BLOCK_BYTES) * TAR_BLOCK_BYTES;
  }
  return undefined;
}
