/**
 * Cross-field checks the schema cannot express. Connaisseur finds most of these only at admission
 * time ("validator not found", "unable to find trust root"); Provenant refuses them at load, so a
 * broken policy never reaches the admission path.
 */
import { compilePattern, PatternSyntaxError, unmatchableReason } from '../policy/index.ts';
import { compileIdentityPattern } from '../trust/cosign/index.ts';
import { notaryBaseUrl, parseTrustRootKey } from '../trust/notaryv1/index.ts';
import { parseCertificates } from '../trust/notation/trust-roots.ts';
import type {
  AuthMethod,
  Config,
  RuleConfig,
  TrustRootConfig,
  ValidatorConfig,
  ValidatorType,
} from './schema.ts';

/** Validator types this build can verify. A config naming any other type is refused, never ignored. */
export const SUPPORTED_VALIDATOR_TYPES: ReadonlySet<ValidatorType> = new Set<ValidatorType>([
  'static',
  'notaryv1',
  'cosign',
  'notation',
]);

export function semanticProblems(config: Config): string[] {
  return [
    ...validatorProblems(config.validators),
    ...config.policy.flatMap((r, i) => ruleProblems(r, i, config)),
    ...(config.sigstore?.tufRoot !== undefined && config.sigstore.tufMirror === undefined
      ? ['/sigstore/tufRoot: an initial TUF root needs sigstore.tufMirror, the repository it belongs to']
      : []),
    ...serverProblems(config.server),
    ...cacheProblems(config.cache),
  ];
}

/** Node refuses a headers timeout longer than the whole-request timeout it is part of. */
function serverProblems(server: Config['server'] | null): string[] {
  // Runs even when the schema refused the server section (it may not be an object then), as cacheProblems.
  if (typeof server !== 'object' || server === null) return [];
  return [
    ...(server.headersTimeoutMs > server.bodyTimeoutMs
      ? [
          `/server/headersTimeoutMs: expected at most server.bodyTimeoutMs (${server.bodyTimeoutMs}), found ${server.headersTimeoutMs}`,
        ]
      : []),
    ...authRouteProblems(server),
  ];
}

/** A route may only accept a credential that is switched on: else no client could ever be served. */
function authRouteProblems(server: Config['server']): string[] {
  const routes = server.auth?.routes;
  if (routes === undefined) return [];
  const enabled: Record<AuthMethod, string | undefined> = {
    clientCertificate: server.tls?.clientCA === undefined ? 'server.tls.clientCA is not set' : undefined,
    kyvernoToken: server.auth.kyverno.enabled ? undefined : 'server.auth.kyverno.enabled is false',
  };
  return Object.entries(routes).flatMap(([route, methods]) =>
    (methods ?? []).flatMap((m) => {
      const off = enabled[m];
      return off === undefined
        ? []
        : [`/server/auth/routes/${route}: expected credentials that are switched on, found ${m} (${off})`];
    }),
  );
}

/**
 * What loads but is likely a mistake, one line each with its field path: policy patterns that can
 * never match a normalised image. Called on a config that passed semanticProblems.
 */
export function semanticWarnings(config: Config): string[] {
  return config.policy.flatMap((rule, i) => {
    const reason = unmatchableReason(compilePattern(rule.pattern));
    return reason === undefined ? [] : [`/policy/${i}/pattern: ${reason}`];
  });
}

/** A shared Redis is written by whoever can reach it: its entries count only with a valid HMAC. */
function cacheProblems(cache: Config['cache'] | null): string[] {
  // Runs even when the schema refused the cache section (it may not be an object then).
  if (typeof cache !== 'object' || cache === null) return [];
  const keys = [cache.hmacKey, cache.hmacKeyFile].filter((k) => k !== undefined).length;
  if (cache.redis !== undefined && keys === 0)
    return ['/cache: redis needs hmacKey or hmacKeyFile, the key that authenticates its entries'];
  if (keys > 1) return ['/cache: expected exactly one of hmacKey or hmacKeyFile, found both'];
  return [];
}

function validatorProblems(validators: readonly ValidatorConfig[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  validators.forEach((v, i) => {
    const first = seen.get(v.name);
    if (first !== undefined)
      problems.push(`/validators/${i}/name: duplicate name "${v.name}" (also /validators/${first})`);
    else seen.set(v.name, i);
    if (!SUPPORTED_VALIDATOR_TYPES.has(v.type)) {
      const supported = [...SUPPORTED_VALIDATOR_TYPES].join(', ');
      problems.push(
        `/validators/${i}/type: validator type "${v.type}" is not supported by this build (supported: ${supported})`,
      );
    }
    if (v.type !== 'static') problems.push(...trustRootProblems(v, `/validators/${i}`));
    if (v.type === 'notaryv1') problems.push(...notaryProblems(v, `/validators/${i}`));
    if (v.type === 'notation') problems.push(...notationProblems(v, `/validators/${i}`));
  });
  return problems;
}

function trustRootProblems(v: Exclude<ValidatorConfig, { type: 'static' }>, path: string): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  v.trustRoots.forEach((root, i) => {
    const at = `${path}/trustRoots/${i}`;
    if (names.has(root.name)) problems.push(`${at}/name: duplicate trust root name "${root.name}"`);
    names.add(root.name);
    const expected = expectedMaterial(v.type);
    const given = (['key', 'cert', 'keyless'] as const).filter((k) => root[k] !== undefined);
    if (given.length !== 1 || !expected.includes(given[0] as string)) {
      problems.push(
        `${at}: expected exactly one of ${expected.join(' or ')} for a ${v.type} trust root, found ${given.join(', ') || 'none'}`,
      );
    }
    problems.push(...keylessProblems(root, at));
  });
  return problems;
}

/** Connaisseur's load-time checks of a notaryv1 validator: a usable host URL, PEM ECDSA/RSA root keys. */
function notaryProblems(v: Extract<ValidatorConfig, { type: 'notaryv1' }>, path: string): string[] {
  const problems: string[] = [];
  if (v.auth !== undefined) {
    problems.push(
      `${path}/auth: Connaisseur's validator auth is not read by this build; give the Notary host's credentials in a registries: entry for it (username/password) and remove auth`,
    );
  }
  try {
    notaryBaseUrl(v.host);
  } catch {
    problems.push(`${path}/host: invalid url for notary host ${JSON.stringify(v.host)}`);
  }
  v.trustRoots.forEach((root, i) => {
    if (root.key === undefined) return;
    try {
      parseTrustRootKey(root.key);
    } catch (err) {
      problems.push(`${path}/trustRoots/${i}/key: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return problems;
}

/** Notation trust roots are PEM certificates, read now so a bad one never reaches an admission. */
function notationProblems(v: Extract<ValidatorConfig, { type: 'notation' }>, path: string): string[] {
  const problems: string[] = [];
  v.trustRoots.forEach((root, i) => {
    for (const field of ['cert', 'tsCert'] as const) {
      const pem = root[field];
      if (pem === undefined) continue;
      try {
        parseCertificates(pem, v.name, root.name);
      } catch (err) {
        problems.push(
          `${path}/trustRoots/${i}/${field}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  });
  return problems;
}

function expectedMaterial(type: Exclude<ValidatorType, 'static'>): string[] {
  switch (type) {
    case 'cosign':
      return ['key', 'keyless'];
    case 'notaryv1':
      return ['key'];
    case 'notation':
      return ['cert'];
  }
}

function keylessProblems(root: TrustRootConfig, at: string): string[] {
  const k = root.keyless;
  if (k === undefined) return [];
  const problems: string[] = [];
  for (const [exact, regex] of [
    ['issuer', 'issuerRegex'],
    ['subject', 'subjectRegex'],
  ] as const) {
    if ((k[exact] === undefined) === (k[regex] === undefined)) {
      problems.push(`${at}/keyless: expected exactly one of ${exact} or ${regex}`);
    }
    const source = k[regex];
    const why = source === undefined ? undefined : patternProblem(source);
    if (why !== undefined) problems.push(`${at}/keyless/${regex} (trust root "${root.name}"): ${why}`);
  }
  return problems;
}

function ruleProblems(rule: RuleConfig, i: number, config: Config): string[] {
  const at = `/policy/${i}`;
  const problems: string[] = [];
  try {
    compilePattern(rule.pattern);
  } catch (err) {
    if (!(err instanceof PatternSyntaxError)) throw err;
    problems.push(`${at}/pattern: ${err.message}`);
  }
  const validator = config.validators.find((v) => v.name === rule.validator);
  if (validator === undefined) {
    problems.push(
      `${at}/validator: no validator named "${rule.validator}"${rule.validator === 'default' ? ' (a rule without validator uses "default")' : ''}`,
    );
    return problems;
  }
  if (validator.type === 'static') return problems;
  // A trustpolicy.json decides which roots count (its trustStores); `with.trustRoot` is not read.
  if (validator.type === 'notation' && validator.trustPolicy !== undefined) return problems;
  const roots = new Set(validator.trustRoots.map((r) => r.name));
  const trustRoot = rule.with?.trustRoot ?? 'default';
  if (trustRoot !== '*' && !roots.has(trustRoot)) {
    problems.push(`${at}/with/trustRoot: validator "${validator.name}" has no trust root "${trustRoot}"`);
  }
  for (const name of rule.with?.required ?? []) {
    if (!roots.has(name))
      problems.push(`${at}/with/required: validator "${validator.name}" has no trust root "${name}"`);
  }
  if (rule.with?.required !== undefined && rule.with.delegations !== undefined) {
    problems.push(`${at}/with: "required" and "delegations" cannot be combined`);
  }
  return problems;
}

/** Keyless patterns are RE2, as cosign compiles them (trust/cosign/identity-pattern.ts). */
function patternProblem(source: string): string | undefined {
  try {
    compileIdentityPattern(source);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
