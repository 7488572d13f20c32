/**
 * Notation's trust policy document (notaryproject/specifications `trust-store-trust-policy.md`, version
 * 1.0), applied as `notation verify` applies it: the policy whose `registryScopes` names the image's
 * repository, else the `*` policy; its level with per-check `override`s; its `trustStores`, which here
 * name the validator's trust roots (`ca:NAME` → that root's `cert`, `signingAuthority:NAME` likewise,
 * `tsa:NAME` → its `tsCert`); and `trustedIdentities` matched against the signing certificate's subject.
 */
import type { X509Certificate } from 'node:crypto';
import { LEVEL_ACTIONS, type Action, type Validation, type VerificationLevel } from './levels.ts';

export interface TrustPolicy {
  readonly name: string;
  readonly registryScopes: readonly string[];
  readonly level: VerificationLevel;
  readonly actions: Readonly<Record<Validation, Action>>;
  readonly verifyTimestamp: 'always' | 'afterCertExpiry';
  readonly trustStores: readonly {
    readonly type: 'ca' | 'signingAuthority' | 'tsa';
    readonly name: string;
  }[];
  /** `*`, or distinguished names as attribute → value maps. */
  readonly trustedIdentities: '*' | readonly ReadonlyMap<string, string>[];
}

export class InvalidTrustPolicy extends Error {}

const LEVELS: ReadonlySet<string> = new Set(['strict', 'permissive', 'audit', 'skip']);
const ACTIONS: ReadonlySet<string> = new Set(['enforce', 'log', 'skip']);
const VALIDATIONS: ReadonlySet<string> = new Set([
  'integrity',
  'authenticity',
  'authenticTimestamp',
  'expiry',
  'revocation',
]);
const STORE_TYPES: ReadonlySet<string> = new Set(['ca', 'signingAuthority', 'tsa']);
const X509_SUBJECT = 'x509.subject:';
const REQUIRED_DN_ATTRIBUTES: readonly string[] = ['C', 'ST', 'O'];

/** Parses and checks a trustpolicy.json document; `roots` are the validator's trust root names. */
export function parseTrustPolicies(text: string, roots: ReadonlySet<string>): TrustPolicy[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidTrustPolicy(`not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(doc) || doc['version'] !== '1.0' || !Array.isArray(doc['trustPolicies']))
    throw new InvalidTrustPolicy('expected {"version": "1.0", "trustPolicies": [...]}');
  const policies = doc['trustPolicies'].map((p, i) => parsePolicy(p, i, roots));
  const scopes = policies.flatMap((p) => p.registryScopes);
  const duplicate = scopes.find((s, i) => scopes.indexOf(s) !== i);
  if (duplicate !== undefined)
    throw new InvalidTrustPolicy(`registry scope ${duplicate} is in more than one policy`);
  return policies;
}

function parsePolicy(value: unknown, i: number, roots: ReadonlySet<string>): TrustPolicy {
  const at = `trustPolicies[${i}]`;
  if (!isRecord(value)) throw new InvalidTrustPolicy(`${at}: expected an object`);
  const name = value['name'];
  const scopes = value['registryScopes'];
  const verification = value['signatureVerification'];
  if (typeof name !== 'string' || name === '') throw new InvalidTrustPolicy(`${at}: expected a name`);
  if (!isStringList(scopes) || scopes.length === 0 || (scopes.includes('*') && scopes.length > 1))
    throw new InvalidTrustPolicy(`${at} (${name}): expected registryScopes, "*" alone or repositories`);
  if (
    !isRecord(verification) ||
    typeof verification['level'] !== 'string' ||
    !LEVELS.has(verification['level'])
  )
    throw new InvalidTrustPolicy(
      `${at} (${name}): expected signatureVerification.level strict, permissive, audit or skip`,
    );
  const level = verification['level'] as VerificationLevel;
  const actions = {
    ...LEVEL_ACTIONS[level],
    ...overrides(verification['override'], level, `${at} (${name})`),
  };
  const verifyTimestamp = verification['verifyTimestamp'] ?? 'always';
  if (verifyTimestamp !== 'always' && verifyTimestamp !== 'afterCertExpiry')
    throw new InvalidTrustPolicy(`${at} (${name}): expected verifyTimestamp always or afterCertExpiry`);
  const stores = value['trustStores'] ?? [];
  const identities = value['trustedIdentities'] ?? [];
  if (!isStringList(stores) || !isStringList(identities))
    throw new InvalidTrustPolicy(
      `${at} (${name}): expected trustStores and trustedIdentities as lists of strings`,
    );
  if (level === 'skip') {
    if (stores.length > 0 || identities.length > 0)
      throw new InvalidTrustPolicy(`${at} (${name}): a skip policy has no trustStores or trustedIdentities`);
  } else if (stores.length === 0 || identities.length === 0) {
    throw new InvalidTrustPolicy(`${at} (${name}): expected trustStores and trustedIdentities`);
  }
  return {
    name,
    registryScopes: scopes,
    level,
    actions,
    verifyTimestamp,
    trustStores: stores.map((s) => trustStore(s, roots, `${at} (${name})`)),
    trustedIdentities: identities.includes('*')
      ? identities.length === 1
        ? '*'
        : fail(`${at} (${name}): "*" must be the only trusted identity`)
      : identities.map((id) => identity(id, `${at} (${name})`)),
  };
}

/** The specification: integrity is never overridden, authenticity never skipped, a skip level has none. */
function overrides(
  value: unknown,
  level: VerificationLevel,
  at: string,
): Partial<Record<Validation, Action>> {
  if (value === undefined) return {};
  if (!isRecord(value) || level === 'skip') throw new InvalidTrustPolicy(`${at}: unusable override`);
  for (const [check, action] of Object.entries(value)) {
    if (!VALIDATIONS.has(check) || typeof action !== 'string' || !ACTIONS.has(action))
      throw new InvalidTrustPolicy(
        `${at}: override ${check}: ${String(action)} is not a check and an action`,
      );
    if (check === 'integrity') throw new InvalidTrustPolicy(`${at}: integrity cannot be overridden`);
    if (check === 'authenticity' && action === 'skip')
      throw new InvalidTrustPolicy(`${at}: authenticity cannot be skipped`);
  }
  return value;
}

function trustStore(
  value: string,
  roots: ReadonlySet<string>,
  at: string,
): TrustPolicy['trustStores'][number] {
  const [type, name] = value.split(':', 2);
  if (type === undefined || name === undefined || !STORE_TYPES.has(type))
    throw new InvalidTrustPolicy(
      `${at}: trust store ${value}: expected ca:NAME, signingAuthority:NAME or tsa:NAME`,
    );
  if (!roots.has(name))
    throw new InvalidTrustPolicy(`${at}: trust store ${value} names no trust root of the validator`);
  return { type: type as 'ca' | 'signingAuthority' | 'tsa', name };
}

function identity(value: string, at: string): ReadonlyMap<string, string> {
  if (!value.startsWith(X509_SUBJECT))
    throw new InvalidTrustPolicy(`${at}: identity ${value}: expected "x509.subject: <DN>"`);
  const dn = parseDn(value.slice(X509_SUBJECT.length));
  if (dn === undefined)
    throw new InvalidTrustPolicy(`${at}: identity ${value}: unreadable distinguished name`);
  // The specification: an identity names at least the country, state and organization.
  if (!REQUIRED_DN_ATTRIBUTES.every((a) => dn.has(a)))
    throw new InvalidTrustPolicy(`${at}: identity ${value}: expected at least C, ST and O`);
  return dn;
}

/** `C=US, ST=WA, O=Acme` (RFC 4514 without escapes) → attribute → value. */
function parseDn(text: string): Map<string, string> | undefined {
  const dn = new Map<string, string>();
  for (const part of text.split(',')) {
    const [attr, ...rest] = part.split('=');
    const value = rest.join('=').trim();
    if (attr === undefined || attr.trim() === '' || value === '' || dn.has(attr.trim().toUpperCase()))
      return undefined;
    dn.set(attr.trim().toUpperCase(), value);
  }
  return dn;
}

/** The policy for `repository` (`registry/path`): the one naming it, else the `*` one (the specification's order). */
export function policyFor(policies: readonly TrustPolicy[], repository: string): TrustPolicy | undefined {
  return (
    policies.find((p) => p.registryScopes.includes(repository)) ??
    policies.find((p) => p.registryScopes.includes('*'))
  );
}

/** notation-go `isSubsetDN`: every attribute of a trusted identity is in the signing certificate's subject. */
export function identityTrusted(policy: TrustPolicy, leaf: X509Certificate): boolean {
  if (policy.trustedIdentities === '*') return true;
  const subject = new Map(
    leaf.subject.split('\n').map((line) => {
      const [attr, ...rest] = line.split('=');
      return [(attr ?? '').trim().toUpperCase(), rest.join('=').trim()] as const;
    }),
  );
  return policy.trustedIdentities.some((id) => [...id].every(([attr, value]) => subject.get(attr) === value));
}

function fail(message: string): never {
  throw new InvalidTrustPolicy(message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
