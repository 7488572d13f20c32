import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { pushRandomImage } from '../harness/images.ts';
import { startDistributionRegistry } from '../harness/registry.ts';
const registry = await startDistributionRegistry();
const img = await pushRandomImage(registry.url, 'static/app', 'v1');
writeFileSync('/tmp/prof/c.yaml', `validators: [{ name: allow, type: static, approve: true }]
policy: [{ pattern: "*:*", validator: allow }]
server: { host: 127.0.0.1, port: 18555 }
registries: [{ host: "${registry.host}", insecure: true }]
cache: { ttlSeconds: 600 }
log: { level: error }
`);
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', 'bin/provenant.mjs', 'serve', '--config', '/tmp/prof/c.yaml'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
while (!out.includes('listening')) await sleep(50);
const ca = readFileSync(/--cacert (\S+)\)/.exec(out)![1]!, 'utf8');
const agent = new Agent({ connections: 4, connect: { ca } });
const body = JSON.stringify({ apiVersion: 'externaldata.gatekeeper.sh/v1beta1', kind: 'ProviderRequest', request: { keys: [img.reference] } });
const end = Date.now() + 6000; let n = 0;
await Promise.all(Array.from({ length: 4 }, async () => { while (Date.now() < end) { const r = await request('https://127.0.0.1:18555/v1/verify', { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: agent }); await r.body.text(); n++; } }));
console.log('requests', n);
child.kill('SIGINT');
await new Promise((r) => child.once('exit', r));
await agent.close(); await registry.stop();
