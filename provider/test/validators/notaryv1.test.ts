import type { KeyObject } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';

import type { RuleConfig } from '../../src/config/index.ts';
import { parseReference } from '../../src/reference/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';
import { gunOf, NotaryV1Validator, requiredDelegations } from '../../src/validators/notaryv1/notaryv1.ts';
import { startHostileServer, type HostileServer } from '../helpers/hostile-server.ts';
import { hex, makeKey, TestRepo } from '../trust/notaryv1/repo.ts';

const pem = (key: KeyObject): string => key.export({ format: 'pem', type: 'spki' }).toString();

describe('notaryv1 validator', () => {
  let server: HostileServer | undefined;
  const validators: NotaryV1Validator[] = [];
  afterEach(async () => {
    await Promise.all(validators.splice(0).map((v) => v.close()));
    await server?.close();
    server = undefined;
  });

  /** Serves one repository's published files for every GUN, as notary-server's routes name them. */
  async function serve(repo: TestRepo): Promise<HostileServer> {
    const files = repo.publish();
    server = await startHostileServer((req, res) => {
      const file = /\/_trust\/tuf\/(.+)\.json$/.exec(req.url ?? '')?.[1];
      const bytes = file === undefined ? undefined : files.get(file);
      if (bytes === undefined) res.writeHead(404).end();
      else res.end(bytes);
    });
    return server;
  }

  function validator(host: string, roots: { name: string; key: string }[]): NotaryV1Validator {
    const v = new NotaryV1Validator(
      { name: 'dct', type: 'notaryv1', host: `http://${host}`, trustRoots: roots },
      { maxRetries: 0 },
    );
    validators.push(v);
    return v;
  }

  const rule = (w: RuleConfig['with'] = {}): RuleConfig => ({ pattern: '*', validator: 'dct', with: w });

  it('uses the normalised repository as the GUN, with Docker Hub spelled docker.io', () => {
    expect(gunOf(parseReference('nginx:1'))).toBe('docker.io/library/nginx');
    expect(gunOf(parseReference('index.docker.io/library/nginx'))).toBe('docker.io/library/nginx');
    expect(gunOf(parseReference('registry.acme.io:5000/team/app@sha256:' + hex('a')))).toBe(
      'registry.acme.io:5000/team/app',
    );
  });

  it('adds targets/ to delegation names that lack it', () => {
    expect(requiredDelegations(rule({ delegations: ['releases', 'targets/qa'] }))).toEqual([
      'targets/releases',
      'targets/qa',
    ]);
  });

  it('answers the signed digest and the name of the trust root', async () => {
    const repo = new TestRepo();
    repo.targets = { v1: hex('a') };
    const { host } = await serve(repo);
    const v = validator(host, [{ name: 'ops', key: pem(repo.root.publicKey) }]);
    const result = await v.validate({
      image: parseReference('registry.acme.io/team/app:v1'),
      rule: rule({ trustRoot: 'ops' }),
      signal: AbortSignal.timeout(5000),
    });
    expect(result).toEqual({ digest: `sha256:${hex('a')}`, signers: ['ops'] });
    expect(server?.requests[0]?.path).toBe('/v2/registry.acme.io/team/app/_trust/tuf/root.json');
  });

  it('requires every trust root for "*" and names the one that did not sign', async () => {
    const repo = new TestRepo();
    repo.targets = { v1: hex('a') };
    const { host } = await serve(repo);
    const v = validator(host, [
      { name: 'ops', key: pem(repo.root.publicKey) },
      { name: 'sec', key: pem(makeKey().publicKey) },
    ]);
    const err: unknown = await v
      .validate({
        image: parseReference('r.io/a:v1'),
        rule: rule({ trustRoot: '*' }),
        signal: AbortSignal.timeout(5000),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvenantError);
    expect((err as ProvenantError).code).toBe('NOTARY_ROOT_NOT_TRUSTED');
    expect((err as ProvenantError).message).toContain('trust root "sec"');
  });

  it('refuses a rule naming a trust root it does not have, before any request', async () => {
    const v = validator('127.0.0.1:9', [{ name: 'ops', key: pem(makeKey().publicKey) }]);
    const err: unknown = await v
      .validate({
        image: parseReference('r.io/a:v1'),
        rule: rule({ trustRoot: 'dev' }),
        signal: AbortSignal.timeout(5000),
      })
      .catch((e: unknown) => e);
    expect((err as ProvenantError).code).toBe('CONFIG_INVALID');
    expect((err as ProvenantError).message).toContain('names trust root "dev"');
  });
});
