import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { embeddedConfig } from '../../src/config/index.ts';
import { compileRules, mostSpecificRule } from '../../src/policy/index.ts';
import { parseReference } from '../../src/reference/index.ts';

const DIGEST = `sha256:${createHash('sha256').update('local image').digest('hex')}`;

describe('the embedded default config', () => {
  const config = embeddedConfig();
  const rules = compileRules(config.policy);

  /** What the static validator of the image's rule decides, or why there is no decision. */
  function verdict(image: string): string {
    const chosen = mostSpecificRule(rules, parseReference(image));
    if (chosen === undefined) return 'no rule';
    const validator = config.validators.find((v) => v.name === chosen.rule.validator);
    if (validator?.type !== 'static') return `validator ${chosen.rule.validator}`;
    return validator.approve ? 'allow' : 'deny';
  }

  it('loads, frozen', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.policy)).toBe(true);
  });

  it.each(['nginx', 'docker.io/library/nginx:1.27', `quay.io/team/app@${DIGEST}`])('denies %s', (image) => {
    expect(verdict(image)).toBe('deny');
  });

  it.each(['127.0.0.1:5000/x:1', `localhost:5000/team/app@${DIGEST}`, 'localhost:32000/app'])(
    'allows %s from a loopback registry',
    (image) => {
      expect(verdict(image)).toBe('allow');
    },
  );

  it.each(['127.0.0.1.nip.io/x:1', 'localhost.evil.io/x:1', 'localhost/x:1'])(
    'denies %s, which only looks like a loopback registry',
    (image) => {
      expect(verdict(image)).toBe('deny');
    },
  );

  it('listens on loopback only and allows plain HTTP only to loopback registries', () => {
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.server.port).toBe(8443);
    const insecureHosts = config.registries.filter((r) => r.insecure).map((r) => r.host);
    expect(insecureHosts).toEqual(['127.0.0.1:*', 'localhost:*']);
  });
});
