/**
 * The one configuration schema. `validators:` and `policy:` keep Connaisseur's shape unchanged
 * (shared/reference/connaisseur-config.md); the other sections are Provenant's own. The Helm chart's
 * values.schema.json is generated from this schema, so it is the single source of truth.
 */
import { Type, type Static, type TSchema, type TUnion } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const NonEmpty = Type.String({ minLength: 1 });
const Pem = Type.String({ minLength: 1, description: 'PEM text' });

const Keyless = Type.Object(
  {
    issuer: Type.Optional(NonEmpty),
    issuerRegex: Type.Optional(NonEmpty),
    subject: Type.Optional(NonEmpty),
    subjectRegex: Type.Optional(NonEmpty),
  },
  strict,
);

const TrustRoot = Type.Object(
  {
    name: NonEmpty,
    key: Type.Optional(Pem),
    cert: Type.Optional(Pem),
    tsCert: Type.Optional(Pem),
    keyless: Type.Optional(Keyless),
  },
  strict,
);

// Connaisseur's validator-level `auth` (secretName mounted under /app/secrets, or ambient keychain).
const ValidatorAuth = Type.Object(
  { secretName: Type.Optional(NonEmpty), useKeychain: Type.Optional(Type.Boolean()) },
  strict,
);

const StaticValidator = Type.Object(
  { name: NonEmpty, type: Type.Literal('static'), approve: Type.Boolean({ default: false }) },
  strict,
);

const CosignValidator = Type.Object(
  {
    name: NonEmpty,
    type: Type.Literal('cosign'),
    trustRoots: Type.Array(TrustRoot, { minItems: 1 }),
    host: Type.Optional(
      Type.Object(
        {
          rekor: Type.Optional(NonEmpty),
          rekorPubkey: Type.Optional(Pem),
          ctLogPubkey: Type.Optional(Pem),
          fulcioCert: Type.Optional(Pem),
        },
        strict,
      ),
    ),
    cert: Type.Optional(Pem),
    auth: Type.Optional(ValidatorAuth),
    // Provenant's own (Connaisseur has no attestation checks): an in-toto attestation the signers
    // must also have made, and a Rego condition on its predicate.
    attestation: Type.Optional(
      Type.Object(
        {
          predicateType: NonEmpty,
          policy: Type.Optional(
            Type.String({ minLength: 1, description: '.rego source or opa-built .wasm' }),
          ),
          entrypoint: Type.Optional(NonEmpty),
        },
        strict,
      ),
    ),
  },
  strict,
);

const NotaryV1Validator = Type.Object(
  {
    name: NonEmpty,
    type: Type.Literal('notaryv1'),
    host: Type.String({ minLength: 1, default: 'notary.docker.io' }),
    cert: Type.Optional(Pem),
    trustRoots: Type.Array(TrustRoot, { minItems: 1 }),
    auth: Type.Optional(ValidatorAuth),
  },
  strict,
);

const NotationValidator = Type.Object(
  {
    name: NonEmpty,
    type: Type.Literal('notation'),
    trustRoots: Type.Array(TrustRoot, { minItems: 1 }),
    cert: Type.Optional(Pem),
    // Provenant's own: a Notation trustpolicy.json (path); its trustStores name these trustRoots.
    trustPolicy: Type.Optional(Type.String({ minLength: 1, description: 'trustpolicy.json file' })),
    auth: Type.Optional(ValidatorAuth),
  },
  strict,
);

// `discriminator` lets ajv report errors of the branch `type` selects instead of every branch. ajv
// applies it (in place of `oneOf`) to objects only, so anything else passed unchecked: `type: object`
// refuses a validator that is an array, a string or null.
const ValidatorVariants = [StaticValidator, CosignValidator, NotaryV1Validator, NotationValidator] as const;
const Validator = Type.Unsafe<Static<TUnion<[...typeof ValidatorVariants]>>>({
  type: 'object',
  oneOf: [...ValidatorVariants],
  discriminator: { propertyName: 'type' },
});

const RuleOptions = Type.Object(
  {
    trustRoot: Type.Optional(NonEmpty),
    threshold: Type.Optional(Type.Integer({ minimum: 0 })),
    required: Type.Optional(Type.Array(NonEmpty)),
    delegations: Type.Optional(Type.Array(NonEmpty)),
    verifyInTransparencyLog: Type.Optional(Type.Boolean()),
    verifySCT: Type.Optional(Type.Boolean()),
    mode: Type.Optional(Type.Union([Type.Literal('mutate'), Type.Literal('insecureValidateOnly')])),
    verificationLevel: Type.Optional(
      Type.Union([Type.Literal('strict'), Type.Literal('permissive'), Type.Literal('audit')]),
    ),
    verifyTimestamp: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('afterCertExpiry')])),
  },
  strict,
);

const Rule = Type.Object(
  {
    pattern: NonEmpty,
    validator: Type.String({ minLength: 1, default: 'default' }),
    with: Type.Optional(RuleOptions),
  },
  strict,
);

const Tls = Type.Object(
  {
    cert: NonEmpty,
    key: NonEmpty,
    clientCA: Type.Optional(NonEmpty),
    minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2' }),
    ciphers: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'OpenSSL cipher list (TLS 1.2 and 1.3 names); default: forward-secret AEAD suites only',
      }),
    ),
  },
  strict,
);

/** Credentials a /v1/* route accepts: Gatekeeper's client certificate, Kyverno's service-account token. */
const AuthMethod = Type.Union([Type.Literal('clientCertificate'), Type.Literal('kyvernoToken')]);
const AuthMethods = Type.Array(AuthMethod, { minItems: 1, uniqueItems: true });

const Auth = Type.Object(
  {
    // Kyverno's bearer token, checked with a TokenReview against the Kubernetes API.
    kyverno: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        audience: Type.String({
          minLength: 1,
          default: 'kyverno-svc.kyverno.io',
          description: "the token's audience (Kyverno's chart: apiCallToken.audience)",
        }),
        serviceAccounts: Type.Array(NonEmpty, {
          minItems: 1,
          default: ['system:serviceaccount:kyverno:kyverno-admission-controller'],
          description: 'usernames a reviewed token may belong to',
        }),
        reviewCacheSeconds: Type.Integer({
          minimum: 0,
          maximum: 300,
          default: 10,
          description: 'how long an accepted review is reused (s); a refused one at most 2 s',
        }),
        kubeconfig: Type.Optional(
          Type.String({ minLength: 1, description: 'default: in-cluster service account, else KUBECONFIG' }),
        ),
      },
      { ...strict, default: {} },
    ),
    routes: Type.Optional(
      Type.Object(
        { verify: Type.Optional(AuthMethods), mutate: Type.Optional(AuthMethods) },
        { ...strict, description: 'accepted credentials per route; default: every enabled one' },
      ),
    ),
  },
  { ...strict, default: {} },
);

const Server = Type.Object(
  {
    host: Type.String({ default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
    tls: Type.Optional(Tls),
    auth: Auth,
    maxKeys: Type.Integer({ minimum: 1, maximum: 10000, default: 1000 }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
    requestDeadlineMs: Type.Integer({ minimum: 100, default: 2500, description: 'answer within (ms)' }),
    // Slow clients (slowloris, a stalled body) are closed rather than held: each bound is per connection.
    headersTimeoutMs: Type.Integer({
      minimum: 100,
      default: 5000,
      description: 'TLS handshake, then request headers, must arrive within (ms)',
    }),
    bodyTimeoutMs: Type.Integer({
      minimum: 100,
      default: 10_000,
      description: 'the whole request (headers and body) must arrive within (ms)',
    }),
    idleTimeoutMs: Type.Integer({ minimum: 100, default: 30_000, description: 'keep-alive idle (ms)' }),
    maxConnections: Type.Integer({ minimum: 1, default: 1000 }),
    drainSeconds: Type.Integer({
      minimum: 0,
      default: 10,
      description: 'after SIGTERM: not ready, still answering, before the listener closes (s)',
    }),
    allowDevCertificate: Type.Boolean({
      default: false,
      description: 'serve the self-generated certificate on a non-loopback host (never in production)',
    }),
  },
  { ...strict, default: {} },
);

const RegistryAuth = Type.Union([
  Type.Object({ username: NonEmpty, password: Type.String() }, strict),
  Type.Object({ dockerConfig: NonEmpty }, strict),
  Type.Object({ secret: Type.Object({ namespace: NonEmpty, name: NonEmpty }, strict) }, strict),
]);

const Registry = Type.Object(
  {
    host: NonEmpty,
    insecure: Type.Boolean({ default: false, description: 'allow plain HTTP' }),
    ca: Type.Optional(NonEmpty),
    auth: Type.Optional(RegistryAuth),
    mirror: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^/\\s]+(/[a-z0-9._/-]+)?$',
        description: 'fetch this registry from host[/path-prefix] instead (air-gapped clusters)',
      }),
    ),
  },
  strict,
);

const Network = Type.Object(
  {
    requestTimeoutMs: Type.Integer({ minimum: 50, default: 2000 }),
    maxRetries: Type.Integer({ minimum: 0, maximum: 5, default: 2 }),
    maxManifestBytes: Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024 }),
    maxBlobBytes: Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024, description: 'signature blobs' }),
    maxConcurrentRequests: Type.Integer({
      minimum: 1,
      default: 64,
      description: 'registry requests in flight at once, overall; more wait (within the deadline)',
    }),
    maxConcurrentRequestsPerRegistry: Type.Integer({
      minimum: 1,
      default: 16,
      description: 'registry requests in flight at once to one registry host',
    }),
    egress: Type.Object(
      {
        allowUnlistedRegistries: Type.Boolean({
          default: false,
          description:
            'let images name registries no registries: entry or policy pattern lists (public addresses only)',
        }),
      },
      { ...strict, default: {} },
    ),
  },
  { ...strict, default: {} },
);

const Cache = Type.Object(
  {
    ttlSeconds: Type.Integer({ minimum: 0, default: 30, description: '0 disables caching' }),
    negativeTtlSeconds: Type.Integer({ minimum: 0, default: 5 }),
    maxEntries: Type.Integer({ minimum: 1, default: 10000 }),
    redis: Type.Optional(NonEmpty),
    // Redis entries carry an HMAC-SHA256 under this key; a shared Redis needs one (exactly one of the two).
    hmacKey: Type.Optional(
      Type.String({ minLength: 32, description: 'secret key authenticating Redis entries (32+ characters)' }),
    ),
    hmacKeyFile: Type.Optional(
      Type.String({ minLength: 1, description: 'file holding hmacKey, e.g. a mounted Secret' }),
    ),
    // The Redis password from a file (a mounted Secret), so that the URL, and the config, hold none.
    redisPasswordFile: Type.Optional(
      Type.String({ minLength: 1, description: 'file holding the Redis password; overrides the URL' }),
    ),
  },
  { ...strict, default: {} },
);

const Sigstore = Type.Object(
  {
    tufMirror: Type.Optional(NonEmpty),
    tufRoot: Type.Optional(NonEmpty),
    trustedRoot: Type.Optional(NonEmpty),
    tufCacheDir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'private TUF metadata cache (default $XDG_CACHE_HOME/provenant/tuf or ~/.cache/provenant/tuf)',
      }),
    ),
    offline: Type.Optional(
      Type.Boolean({ description: 'never refresh the public-good root from its TUF repository' }),
    ),
  },
  strict,
);

const Log = Type.Object(
  {
    level: Type.Union(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  },
  { ...strict, default: {} },
);

// Connaisseur's `alerting:` (shared/reference/connaisseur-config.md §3), sent by alerting/.
const AlertReceiver = Type.Object(
  {
    template: Type.String({
      minLength: 1,
      description: 'slack, opsgenie, msteams, keybase, ecs-1-12-0, or a .json template file',
    }),
    receiverUrl: Type.String({ minLength: 1, description: 'http(s) URL; its host is allowed for egress' }),
    priority: Type.Integer({ default: 3 }),
    customHeaders: Type.Array(Type.String({ pattern: '^[^:\\s]+:' }), {
      default: [],
      description: '"Name: value" strings; values are never logged',
    }),
    payloadFields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    failIfAlertSendingFails: Type.Boolean({
      default: false,
      description: 'a failed send turns the answer into a systemError (Connaisseur denies)',
    }),
  },
  strict,
);

const AlertStream = Type.Object({ receivers: Type.Array(AlertReceiver, { default: [] }) }, strict);

const Alerting = Type.Object(
  {
    clusterIdentifier: Type.String({ default: 'not specified' }),
    admitRequest: Type.Optional(AlertStream),
    rejectRequest: Type.Optional(AlertStream),
    // Provenant's own: alerts leave asynchronously, bounded in rate and time.
    maxAlertsPerMinute: Type.Integer({
      minimum: 1,
      default: 60,
      description: 'per receiver; more are dropped',
    }),
    timeoutMs: Type.Integer({ minimum: 50, default: 2000, description: 'per attempt' }),
    maxRetries: Type.Integer({ minimum: 0, maximum: 5, default: 2 }),
  },
  strict,
);

export const ConfigSchema = Type.Object(
  {
    validators: Type.Array(Validator, { minItems: 1 }),
    policy: Type.Array(Rule, { minItems: 1 }),
    server: Server,
    registries: Type.Array(Registry, { default: [] }),
    network: Network,
    cache: Cache,
    sigstore: Type.Optional(Sigstore),
    log: Log,
    alerting: Type.Optional(Alerting),
  },
  strict,
);

export type Config = Static<typeof ConfigSchema>;
export type ValidatorConfig = Static<typeof Validator>;
export type ValidatorType = ValidatorConfig['type'];
export type TrustRootConfig = Static<typeof TrustRoot>;
export type RuleConfig = Static<typeof Rule>;
export type RuleOptionsConfig = Static<typeof RuleOptions>;
export type RegistryConfig = Static<typeof Registry>;
export type TlsConfig = Static<typeof Tls>;
export type AuthConfig = Static<typeof Auth>;
export type AuthMethod = Static<typeof AuthMethod>;
export type LogLevel = Static<typeof Log>['level'];
export type AlertingConfig = Static<typeof Alerting>;
export type AlertReceiverConfig = Static<typeof AlertReceiver>;

/** The schema as plain JSON (for values.schema.json and docs). */
export function configJsonSchema(): TSchema {
  return JSON.parse(JSON.stringify(ConfigSchema)) as TSchema;
}
