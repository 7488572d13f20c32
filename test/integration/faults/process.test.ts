/**
 * Faults of the provider process itself, under traffic: SIGKILL and a restart on the same address
 * (what Gatekeeper sees: failed calls, which it reports as a systemError, then correct verdicts; never
 * a wrong one), the serving certificate rotated five times (no failed handshake), and the provider's
 * clock 10 minutes behind or ahead of the registry's and the signatures' (libfaketime's `faketime`).
 * SIGTERM's drain and a broken config reload are test/integration/provider/serve.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from 'node:tls';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert, makeCa, type CertFiles } from '../../harness/pki.ts';
import { freePort, makeTempDir } from '../../harness/process.ts';
import { startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { toolPath } from '../../harness/tools.ts';
import { startTraffic, tally, type Traffic } from '../../harness/traffic.ts';
import { errorCode, judge, startWorld, verify, type Case, type World } from '../../harness/world.ts';

const ROTATIONS = 5;

describe('provider process faults under traffic', () => {
  let dir: string;
  let world: World;
  let ca: CertFiles;
  let port: number;
  let configPath: string;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  let traffic: Traffic;
  const url = (): string => `https://127.0.0.1:${port}`;
  const serve = (prefix: string[] = []): Promise<RunningProvenant> =>
    startProvenant([...prefix, 'node', 'bin/provenant.mjs', 'serve', '--config', configPath]);

  beforeAll(async () => {
    dir = await makeTempDir('faults-process');
    world = await startWorld();
    ca = await makeCa(dir, 'ca');
    await issueCert(dir, ca, 'server', 'server');
    port = await freePort();
    configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      `${world.configYaml()}
server: { host: 127.0.0.1, port: ${port}, tls: { cert: server.crt, key: server.key } }
cache: { ttlSeconds: 1, negativeTtlSeconds: 1 }
`,
    );
    provenant = await serve();
    dispatcher = new Agent({ connect: { ca: ca.certPem } });
    traffic = startTraffic({ url, dispatcher: () => dispatcher, cases: world.cases });
    await traffic.allCorrectSince(0, world.cases);
  });
  afterAll(async () => {
    await traffic?.stop();
    await dispatcher?.close();
    await provenant?.stop();
    await world?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('after SIGKILL and a restart: failed calls (a systemError window), then correct verdicts, never a wrong one', async () => {
    const mark = traffic.mark();
    process.kill(-provenant.pid, 'SIGKILL');
    expect(await provenant.stop()).toBeNull();
    await expect.poll(() => tally(traffic.since(mark)).transport, { timeout: 10_000 }).toBeGreaterThan(0);
    provenant = await serve();
    await traffic.allCorrectSince(traffic.mark(), world.cases);
    const answers = traffic.since(mark);
    expect(answers.filter((a) => a.judgement === 'wrong')).toEqual([]);
    // The window closes: the last answer of every key is a correct verdict.
    const last = new Map(answers.map((a) => [a.key, a.judgement]));
    expect(new Set(last.values())).toEqual(new Set(['correct']));
  });

  it(`serves ${ROTATIONS} rotated certificates under traffic without one failed handshake`, async () => {
    const mark = traffic.mark();
    let handshakes = 0;
    const failures: string[] = [];
    const handshake = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.once('error', reject);
      });
    let rotating = true;
    const handshaker = async (): Promise<void> => {
      while (rotating) {
        await handshake().then(
          () => handshakes++,
          (e: Error) => failures.push(e.message),
        );
      }
    };
    const loops = [handshaker(), handshaker()];
    try {
      for (let i = 0; i < ROTATIONS; i++) {
        const next = await issueCert(dir, ca, `server-${i}`, 'server');
        // Written in place, key first, as a careless operator would: the pair is briefly mismatched.
        await writeFile(path.join(dir, 'server.key'), await readFile(next.key));
        await writeFile(path.join(dir, 'server.crt'), await readFile(next.cert));
        const expected = new X509Certificate(next.certPem).fingerprint256;
        await expect.poll(handshake, { timeout: 10_000, interval: 100 }).toBe(expected);
      }
    } finally {
      rotating = false;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(handshakes).toBeGreaterThan(ROTATIONS);
    const answers = traffic.since(mark);
    expect(answers.filter((a) => a.judgement !== 'correct')).toEqual([]);
  });

  /**
   * With the clock 10 minutes behind, trust material issued moments ago is not yet valid: the Notary
   * server's TLS certificate (the connection is refused, a transient failure) and the Notation signing
   * certificate (a denial). The verdict gets stricter, never wrong; material older than the skew (any
   * real deployment's) is unaffected, as the static and cosign keys show.
   */
  const STRICTER_WHEN_BEHIND: Partial<Record<Case['validator'], string>> = {
    notaryv1: 'NOTARY_UNREACHABLE',
    notation: 'NOTATION_CERTIFICATE_EXPIRED',
  };

  for (const skew of ['+10m', '-10m']) {
    it(`judges every image correctly, or more strictly, with its clock ${skew} off the registry's and the signers'`, async () => {
      const skewed = await serveOnOtherPort([toolPath('faketime'), '-f', skew]);
      const agent = new Agent({ connect: { ca: ca.certPem } });
      try {
        for (const c of world.cases) {
          const answer = await verify(skewed.url, agent, [c.key]);
          // An unsigned Notation image stays denied for its own reason; Notary is not reached at all.
          const affected = 'digest' in c.expect || c.validator === 'notaryv1';
          const stricter = skew === '-10m' && affected ? STRICTER_WHEN_BEHIND[c.validator] : undefined;
          if (stricter === undefined) {
            expect({ key: c.key, ...judge(answer, c.expect) }).toEqual({
              key: c.key,
              judgement: 'correct',
              why: '',
            });
          } else {
            const error = answer.systemError || (answer.items[0]?.error ?? '');
            expect({ key: c.key, code: errorCode(error), approved: error === '' }).toEqual({
              key: c.key,
              code: stricter,
              approved: false,
            });
          }
        }
      } finally {
        await agent.close();
        await skewed.stop();
      }
    });
  }

  /** The same config on a port of its own, run under `prefix` (e.g. faketime). */
  async function serveOnOtherPort(prefix: string[]): Promise<RunningProvenant> {
    const other = path.join(dir, `provenant-${await freePort()}.yaml`);
    const config = (await readFile(configPath, 'utf8')).replace(`port: ${port},`, 'port: 0,');
    await writeFile(other, config);
    return startProvenant([...prefix, 'node', 'bin/provenant.mjs', 'serve', '--config', other]);
  }
});
