/**
 * A config holding a secret in every place a config can hold one, and ways to break it. Shared by the
 * unit test of config problems and the integration test that searches `provenant serve` and
 * `provenant verify` output for the secrets.
 */

/** Every secret value, distinct and unlikely to occur by chance in any output. */
export const SECRETS = {
  registryPassword: 'Reg1stry-Pa55-qWx7',
  registryPassword2: 'hunter2zz',
  redisPassword: 'R3dis-Pa55-kLm9',
  hmacKey: 'HmacKey-0123456789-abcdefghij-ZYXWV',
  validatorPassword: 'Val1dator-Pa55-pQr3',
  mirrorPassword: 'M1rror-Pa55-tUv5',
} as const;

export interface SecretConfigOptions {
  /** The registry the password is for; images under it are allowed by a static rule (default: none). */
  readonly registry?: string;
  /** Where the Redis cache is (default: nothing listens there). */
  readonly redisUrl?: string;
}

/** A valid config naming every secret, served on loopback. */
export function secretConfig(options: SecretConfigOptions = {}): string {
  const url = new URL(options.redisUrl ?? 'redis://127.0.0.1:1');
  url.password = SECRETS.redisPassword;
  const registry = options.registry ?? 'registry.example';
  return `validators:
  - name: default
    type: static
    approve: false
  - name: allow
    type: static
    approve: true
policy:
  - pattern: "*:*"
  - pattern: "${registry}/*"
    validator: allow
server:
  host: 127.0.0.1
  port: 0
registries:
  - host: ${registry}
    insecure: true
    auth:
      username: robot
      password: "${SECRETS.registryPassword}"
  - host: other.example
    auth: { username: robot2, password: ${SECRETS.registryPassword2} }
cache:
  redis: "${url.toString()}"
  hmacKey: "${SECRETS.hmacKey}"
`;
}

/** [what is broken, the broken text]: YAML syntax errors and schema errors at secret-bearing fields. */
export function brokenSecretConfigs(options: SecretConfigOptions = {}): [string, string][] {
  const good = secretConfig(options);
  const replace = (from: string, to: string): string => {
    if (!good.includes(from)) throw new Error(`secretConfig() has no ${from}`);
    return good.replace(from, to);
  };
  const { registryPassword, registryPassword2, redisPassword, hmacKey, validatorPassword, mirrorPassword } =
    SECRETS;
  return [
    ['an unclosed flow map on a password line', replace(`${registryPassword2} }`, registryPassword2)],
    ['an unclosed quote after a password', replace(`"${registryPassword}"`, `"${registryPassword}`)],
    [
      'bad indentation under a password',
      replace(`password: "${registryPassword}"`, `password: "${registryPassword}"\n    x`),
    ],
    ['a tab before the Redis URL', replace('  redis:', '\tredis:')],
    ['a bad escape in a quoted password', replace(`"${registryPassword}"`, `"${registryPassword}\\q"`)],
    [
      'a block scalar header with characters after it',
      replace(`"${registryPassword}"`, `|${registryPassword}\n        x`),
    ],
    ['a tag made of a secret', replace(`"${registryPassword}"`, `!${registryPassword} x`)],
    [
      'a duplicated password key',
      replace(
        `password: "${registryPassword}"`,
        `password: "${registryPassword}"\n      password: "${registryPassword}"`,
      ),
    ],
    ['a password that is a number', replace(`"${registryPassword}"`, '1234567890987')],
    [
      'a password glued to its key (one YAML key)',
      replace(`password: ${registryPassword2}`, `password:${registryPassword2}`),
    ],
    [
      'an unknown field next to a password',
      replace(
        `password: ${registryPassword2} }`,
        `password: ${registryPassword2}, extra: ${mirrorPassword} }`,
      ),
    ],
    [
      'a Redis URL given as a mapping',
      replace('  redis: "', `  redis:\n    password: ${redisPassword}\n    url: "`),
    ],
    [
      'an unknown cache field holding a secret',
      replace(`  hmacKey:`, `  redisDb: ${redisPassword}\n  hmacKey:`),
    ],
    ['an HMAC key that is too short', replace(hmacKey, hmacKey.slice(0, 20))],
    ['an HMAC key that is a list', replace(`"${hmacKey}"`, `[${hmacKey}]`)],
    ['a Redis cache without its HMAC key', replace(`  hmacKey: "${hmacKey}"\n`, '')],
    [
      "Connaisseur's username/password validator auth",
      replace(
        '    approve: false',
        `    approve: false\n  - name: signed\n    type: cosign\n    trustRoots: [{ name: default, key: k }]\n    auth: { username: v, password: ${validatorPassword} }`,
      ),
    ],
    [
      'registries turned into a mapping halfway',
      replace('registries:\n  - host:', 'registries:\n  first:\n    host:'),
    ],
    [
      'a mirror with credentials and a bad path',
      replace(
        '  - host: other.example',
        `  - host: other.example\n    mirror: "u:${mirrorPassword}@m.example/UPPER"`,
      ),
    ],
    ['a password in a sequence', replace(`"${registryPassword}"`, `["${registryPassword}", 1]`)],
  ];
}
