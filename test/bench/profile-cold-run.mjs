// The measured half of test/bench/profile-cold.ts (run by it, under `node --cpu-prof`): compiled
// provider code only. The first fifth of the keys warm the code up (JIT, first connections, the referrers
// probe); the rest are measured: process CPU (user + system, all threads) per cold key, and wall time.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../dist/config/index.js';
import { Runtime } from '../../dist/service/index.js';

const [configPath, refsPath] = process.argv.slice(2);
const refs = JSON.parse(await readFile(refsPath, 'utf8'));
const runtime = new Runtime(
  parseConfig(await readFile(configPath, 'utf8'), configPath, path.dirname(configPath)),
  'profile',
);
const warm = Math.max(1, Math.floor(refs.length / 5));
for (const ref of refs.slice(0, warm)) await check(ref);
const measured = refs.slice(warm);
const cpu = process.cpuUsage();
const start = performance.now();
const windowStart = process.hrtime.bigint() / 1000n;
const walls = [];
for (const ref of measured) {
  const t = performance.now();
  await check(ref);
  walls.push(performance.now() - t);
}
const used = process.cpuUsage(cpu);
// The measured keys' part of the profile (the same monotonic clock as the profile's timestamps, in µs).
console.log(`measured window (µs): ${windowStart} ${process.hrtime.bigint() / 1000n}`);
const wall = performance.now() - start;
walls.sort((a, b) => a - b);
console.log(
  `${measured.length} cold cosign keys, one at a time: CPU ${((used.user + used.system) / 1000 / measured.length).toFixed(2)} ms/key ` +
    `(user ${(used.user / 1000 / measured.length).toFixed(2)}, system ${(used.system / 1000 / measured.length).toFixed(2)}), ` +
    `wall p50 ${walls[Math.floor(walls.length / 2)].toFixed(2)} ms, mean ${(wall / measured.length).toFixed(2)} ms`,
);
await runtime.close();

async function check(ref) {
  const outcome = await runtime.verifier.verify(ref);
  if (!outcome.ok) throw new Error(`${ref}: ${outcome.error.code}: ${outcome.error.message}`);
}
