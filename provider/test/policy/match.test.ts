import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  compareSpecificity,
  compilePattern,
  compileRules,
  mostSpecificRule,
  patternMatches,
} from '../../src/policy/index.ts';
import { parseReference } from '../../src/reference/index.ts';

/** A real digest, so references read as names rather than hex. */
const DIGEST = `sha256:${createHash('sha256').update('sample image').digest('hex')}`;

function matches(pattern: string, image: string): boolean {
  return patternMatches(compilePattern(pattern), parseReference(image));
}

interface Rule {
  readonly pattern: string;
  readonly validator: string;
}

/** The pattern of the rule mostSpecificRule picks for the image, or undefined when none matches. */
function winningPattern(rules: readonly Rule[], image: string): string | undefined {
  return mostSpecificRule(compileRules(rules), parseReference(image))?.rule.pattern;
}

function rule(pattern: string, validator = 'default'): Rule {
  return { pattern, validator };
}

describe('pattern matching against image references', () => {
  describe('anchoring (a deliberate difference from Connaisseur)', () => {
    it('matches the image the pattern names', () => {
      expect(matches('docker.io/library/app', 'docker.io/library/app:1')).toBe(true);
      expect(matches('docker.io/library/app', 'app')).toBe(true);
    });

    it('does not match the same name inside another registry', () => {
      expect(matches('docker.io/library/app', 'evil.io/docker.io/library/app:1')).toBe(false);
    });

    it('does not match a repository that merely starts with the name', () => {
      expect(matches('docker.io/library/app', 'docker.io/library/app-not:1')).toBe(false);
      expect(matches('docker.io/library/app', 'docker.io/library/app/sub:1')).toBe(false);
    });

    it('does not match a repository that merely ends with the name', () => {
      expect(matches('docker.io/library/app', 'docker.io/library/myapp:1')).toBe(false);
    });

    it('needs the registry spelled out, as images are matched in normalised form', () => {
      expect(matches('nginx', 'nginx')).toBe(false);
      expect(matches('library/nginx', 'nginx')).toBe(false);
      expect(matches('docker.io/library/nginx', 'nginx')).toBe(true);
    });

    it('lets `*` stand for any registry', () => {
      expect(matches('*/library/nginx', 'nginx:1.27')).toBe(true);
      expect(matches('*/library/nginx', 'quay.io/library/nginx:1.27')).toBe(true);
    });
  });

  describe('Docker Hub spellings', () => {
    it.each(['app:1', 'docker.io/library/app:1', 'index.docker.io/library/app:1', 'library/app:1'])(
      'matches an index.docker.io pattern against %s',
      (image) => {
        expect(matches('index.docker.io/library/app', image)).toBe(true);
        expect(matches('docker.io/library/app', image)).toBe(true);
      },
    );

    it('does not treat other registries as Docker Hub', () => {
      expect(matches('index.docker.io/library/app', 'quay.io/library/app:1')).toBe(false);
    });
  });

  describe('tags and digests', () => {
    it.each(['repo', 'repo:v1', `repo@${DIGEST}`, `repo:v1@${DIGEST}`])(
      'lets a pattern without a tag part match %s',
      (image) => {
        expect(matches('docker.io/team/repo', `team/${image}`)).toBe(true);
      },
    );

    it('does not let `repo:*` match a digest-only reference', () => {
      expect(matches('docker.io/team/repo:*', `team/repo@${DIGEST}`)).toBe(false);
    });

    it('lets `repo:*` match a tagged reference, pinned or not', () => {
      expect(matches('docker.io/team/repo:*', 'team/repo:v1')).toBe(true);
      expect(matches('docker.io/team/repo:*', `team/repo:v1@${DIGEST}`)).toBe(true);
    });

    it('lets `repo:v1` match `repo:v1@sha256:…`, as the digest only pins what the tag names', () => {
      expect(matches('docker.io/team/repo:v1', `team/repo:v1@${DIGEST}`)).toBe(true);
    });

    it('does not let `repo:v1` match another tag or a bare digest', () => {
      expect(matches('docker.io/team/repo:v1', 'team/repo:v10')).toBe(false);
      expect(matches('docker.io/team/repo:v1', `team/repo:v2@${DIGEST}`)).toBe(false);
      expect(matches('docker.io/team/repo:v1', `team/repo@${DIGEST}`)).toBe(false);
    });

    it('lets a defaulted `latest` tag be matched', () => {
      expect(matches('docker.io/team/repo:latest', 'team/repo')).toBe(true);
    });

    it('lets `repo@sha256:*` match only digests written without a tag, as the text is matched', () => {
      expect(matches('docker.io/team/repo@sha256:*', `team/repo@${DIGEST}`)).toBe(true);
      expect(matches('docker.io/team/repo@sha256:*', `team/repo:v1@${DIGEST}`)).toBe(false);
      expect(matches('docker.io/team/repo@sha256:*', 'team/repo:v1')).toBe(false);
      expect(matches('docker.io/team/repo*@sha256:*', `team/repo:v1@${DIGEST}`)).toBe(true);
    });

    it('lets `*:*` match every reference, digests included', () => {
      for (const image of ['nginx', 'quay.io/a/b:1', `team/repo@${DIGEST}`, 'localhost:5000/x']) {
        expect(matches('*:*', image), image).toBe(true);
      }
    });

    it('does not take a registry port for a tag', () => {
      expect(matches('localhost:5000/*', `localhost:5000/team/app@${DIGEST}`)).toBe(true);
      expect(matches('localhost:5000/*', 'localhost:5001/team/app:1')).toBe(false);
    });
  });
});

describe('patterns that span into the tag (issue 10 item 1)', () => {
  it.each([
    ['reg.io/team/app*debug', 'reg.io/team/app:debug'],
    ['reg.io/team/*-rc*', 'reg.io/team/app:1.0-rc1'],
    ['reg.io/app?v1', 'reg.io/app:v1'],
    ['reg.io*debug', 'reg.io/team/app:debug'],
    ['reg.io/team/app*debug', `reg.io/team/app:debug@${DIGEST}`],
  ])('lets %s match %s, as its glob covers the whole reference', (pattern, image) => {
    expect(matches(pattern, image)).toBe(true);
  });

  it.each([
    ['reg.io/team/app*debug', 'reg.io/team/app:1'],
    ['reg.io/team/*-rc*', 'reg.io/team/app:1.0'],
    ['reg.io/app?v1', 'reg.io/app:v2'],
  ])('does not let %s match %s', (pattern, image) => {
    expect(matches(pattern, image)).toBe(false);
  });

  it('lets a deny rule that spans the tag win over a broader allow rule', () => {
    const rules = [rule('reg.io/*', 'allow'), rule('reg.io/team/app*debug', 'deny')];
    expect(
      mostSpecificRule(compileRules(rules), parseReference('reg.io/team/app:debug'))?.rule.validator,
    ).toBe('deny');
    expect(mostSpecificRule(compileRules(rules), parseReference('reg.io/team/app:1'))?.rule.validator).toBe(
      'allow',
    );
  });

  it("does not take a slash-less pattern's port for a tag part", () => {
    for (const image of ['localhost:5000/team/app:1', `localhost:5000/team/app@${DIGEST}`]) {
      expect(matches('localhost:5000*app', image), image).toBe(true);
    }
    expect(matches('localhost:5000*app', 'localhost:5000/team/app-not:1')).toBe(false);
  });
});

// Connaisseur's internal/policy/match_test.go TestCompare, image `docker.io/securesystemsengineering/sample:v1`
// (reference §2.3). `bothMatch` says whether both patterns match that image under Provenant's anchoring.
const SAMPLE_V1 = 'docker.io/securesystemsengineering/sample:v1';
const SPECIFICITY: readonly { winner: string; loser: string; reason: string; bothMatch: boolean }[] = [
  { winner: '*/*', loser: '*:*', reason: 'more components', bothMatch: true },
  { winner: '*/*/*', loser: 'docker*/*', reason: 'more components', bothMatch: true },
  { winner: '*:*', loser: '*', reason: 'a longer component', bothMatch: true },
  { winner: '*/sam*/*', loser: '*/*/image:v1', reason: 'prefix is decided before length', bothMatch: false },
  { winner: 'docker.io/*', loser: 'docker.i*/s*', reason: 'the leftmost prefix, 9 vs 8', bothMatch: true },
  { winner: '*/*', loser: '*:test', reason: 'a tag is not a component', bothMatch: false },
  {
    winner: 'securesystemsengineering/sample:v*',
    loser: 'securesystemsengineering/sample:*',
    reason: 'a longer last component',
    bothMatch: false,
  },
  {
    winner: 'docker.io/securesystemsengineering/sample:v*',
    loser: 'docker.io/securesystemsengineering/sample:*',
    reason: 'a longer prefix in the tag',
    bothMatch: true,
  },
];

describe('most specific rule', () => {
  describe.each(SPECIFICITY)('$winner over $loser ($reason)', ({ winner, loser, bothMatch }) => {
    it('ranks the winner above the loser, and the loser below the winner', () => {
      expect(compareSpecificity(winner, loser, SAMPLE_V1)).toBeGreaterThan(0);
      expect(compareSpecificity(loser, winner, SAMPLE_V1)).toBeLessThan(0);
    });

    it(`${bothMatch ? 'picks the winner in either list order' : 'is not a choice here, as one pattern does not match'}`, () => {
      expect(matches(winner, SAMPLE_V1) && matches(loser, SAMPLE_V1)).toBe(bothMatch);
      if (!bothMatch) return;
      expect(winningPattern([rule(winner), rule(loser)], SAMPLE_V1)).toBe(winner);
      expect(winningPattern([rule(loser), rule(winner)], SAMPLE_V1)).toBe(winner);
    });
  });

  it('scores identical patterns as a tie', () => {
    expect(compareSpecificity('*', '*', SAMPLE_V1)).toBe(0);
    expect(compareSpecificity('docker.io/library/a*', 'docker.io/library/a?', 'docker.io/library/ab:1')).toBe(
      0,
    );
  });

  it('gives a full tie to the later rule in the list', () => {
    const rules = [rule('docker.io/*:*', 'first'), rule('docker.io/*:*', 'second')];
    const chosen = mostSpecificRule(compileRules(rules), parseReference('nginx:1'));
    expect(chosen?.rule.validator).toBe('second');
    expect(chosen?.index).toBe(1);
  });

  it('gives a tie between different patterns to the later rule as well', () => {
    const image = 'docker.io/library/ab:1';
    expect(winningPattern([rule('docker.io/library/a*'), rule('docker.io/library/a?')], image)).toBe(
      'docker.io/library/a?',
    );
    expect(winningPattern([rule('docker.io/library/a?'), rule('docker.io/library/a*')], image)).toBe(
      'docker.io/library/a*',
    );
  });

  it('ignores a more specific rule that does not match', () => {
    expect(winningPattern([rule('*:*'), rule('docker.io/other/sample:v1')], SAMPLE_V1)).toBe('*:*');
  });

  it('returns undefined when no rule matches', () => {
    expect(winningPattern([rule('my.registry/*'), rule('quay.io/*:*')], 'nginx')).toBeUndefined();
    expect(winningPattern([], 'nginx')).toBeUndefined();
  });

  it('scores index.docker.io patterns as their docker.io spelling', () => {
    const rules = [rule('docker.io/library/*'), rule('index.docker.io/library/nginx')];
    expect(winningPattern(rules, 'nginx:1.27')).toBe('index.docker.io/library/nginx');
  });
});

// Connaisseur's test/testdata/config/00_sample.yaml policy, with the images and expected rules of
// internal/config/config_test.go TestMatchingRule (reference §2.3).
const SAMPLE_POLICY: readonly Rule[] = [
  rule('*:*'),
  rule('securesystemsengineering/*:co*', 'cosign'),
  rule('docker.io/*:*'),
  rule('registry.k8s.io/*:*'),
  rule('docker.io/securesystemsengineering/sample'),
  rule('docker.io/securesystemsengineering/sample:v1'),
  rule('docker.io/library/allow-me'),
  rule('docker.io/library/deny-me', 'deny'),
  rule('my.registry/*'),
  rule('my.registry/test'),
  rule('docker.io/test:*'),
  rule('LoCaLhOst:1234/*'),
];

describe("Connaisseur's sample policy", () => {
  it.each([
    ['image:tag', 'docker.io/*:*'],
    ['registry.io/image:tag', '*:*'],
    ['registry.k8s.io/image', 'registry.k8s.io/*:*'],
    ['image', 'docker.io/*:*'],
    ['docker.io/securesystemsengineering/sample:v1', 'docker.io/securesystemsengineering/sample:v1'],
    ['docker.io/securesystemsengineering/sample:v2', 'docker.io/securesystemsengineering/sample'],
    ['my.registry/test:tag', 'my.registry/test'],
    ['my.registry/abc:tag', 'my.registry/*'],
    // Connaisseur's TODO #1517: `library/` is inserted, so `docker.io/test:*` cannot match.
    ['docker.io/test:tag', 'docker.io/*:*'],
  ])('gives %s the rule %s, as Connaisseur does', (image, pattern) => {
    expect(winningPattern(SAMPLE_POLICY, image)).toBe(pattern);
  });

  it.each([
    ['docker.io/library/allow-me:1', 'docker.io/library/allow-me'],
    ['docker.io/library/deny-me:1', 'docker.io/library/deny-me'],
    // Connaisseur's substring match would give these two the allow-me rule.
    ['docker.io/library/allow-me-not:1', 'docker.io/*:*'],
    ['evil.io/docker.io/library/allow-me:1', '*:*'],
    // Connaisseur's substring match would give this one the cosign rule, whose pattern lacks a registry.
    ['docker.io/securesystemsengineering/other:co1', 'docker.io/*:*'],
  ])('gives %s the rule %s under anchored matching', (image, pattern) => {
    expect(winningPattern(SAMPLE_POLICY, image)).toBe(pattern);
  });
});

describe('where a migrated Connaisseur policy behaves differently (README "Connaisseur users")', () => {
  it('does not let a deny rule reach into other registries or longer names, as Connaisseur did', () => {
    const rules = [rule('*:*', 'allow'), rule('docker.io/library/app', 'deny')];
    expect(winningPattern(rules, 'evil.io/docker.io/library/app:1')).toBe('*:*');
    expect(winningPattern(rules, 'docker.io/library/app-not:1')).toBe('*:*');
    const widened = [...rules, rule('*docker.io/library/app*', 'deny')];
    expect(winningPattern(widened, 'evil.io/docker.io/library/app:1')).toBe('*docker.io/library/app*');
    expect(winningPattern(widened, 'docker.io/library/app-not:1')).toBe('*docker.io/library/app*');
  });

  it('lets a slash-less `app:*` match only a registry named app with a port', () => {
    expect(matches('app:*', 'app:5000/team/x:1')).toBe(true);
    expect(matches('app:*', 'app:1')).toBe(false);
  });

  it('ranks docker.io patterns by their registry prefix, where Connaisseur scored none', () => {
    const rules = [rule('*/library/nginx'), rule('docker.io/library/ng*')];
    expect(winningPattern(rules, 'nginx:1')).toBe('docker.io/library/ng*');
    expect(winningPattern([...rules].reverse(), 'nginx:1')).toBe('docker.io/library/ng*');
    // Connaisseur's images are spelled index.docker.io/…: the same order then prefers */library/nginx.
    const connaisseurImage = 'index.docker.io/library/nginx:1';
    expect(compareSpecificity('*/library/nginx', 'docker.io/library/ng*', connaisseurImage)).toBeGreaterThan(
      0,
    );
  });
});
