/**
 * Rego compiled to WebAssembly by the real `opa build -t wasm`, as users ship predicate policies.
 * The bundle is a tar.gz; `policy.wasm` is extracted with tar.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { toolPath } from './tools.ts';

const run = promisify(execFile);

export async function buildWasm(
  dir: string,
  name: string,
  rego: string,
  entrypoint: string,
): Promise<Buffer> {
  const source = path.join(dir, `${name}.rego`);
  const bundle = path.join(dir, `${name}.tar.gz`);
  const out = path.join(dir, `${name}-wasm`);
  await writeFile(source, rego);
  await run(toolPath('opa'), ['build', '-t', 'wasm', '-e', entrypoint, '-o', bundle, source]);
  await run('mkdir', ['-p', out]);
  await run('tar', ['-xzf', bundle, '-C', out, '/policy.wasm']);
  return readFile(path.join(out, 'policy.wasm'));
}
