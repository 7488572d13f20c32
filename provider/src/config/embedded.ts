/**
 * The configuration `provenant serve` runs when no --config is given, so `npm start` works on a fresh
 * machine. It fails closed: every image is denied, except images in registries on this machine's
 * loopback interface, which a static rule allows so a local registry can be tried out at once.
 */
import type { Config } from './schema.ts';
import { parseConfig } from './load.ts';

export const EMBEDDED_CONFIG_SOURCE =
  'embedded default config (development only: allows loopback registries)';

export const EMBEDDED_CONFIG_YAML = `
validators:
  - name: deny
    type: static
    approve: false
  - name: allow-loopback
    type: static
    approve: true
policy:
  - pattern: "*:*"
    validator: deny
  - pattern: "127.0.0.1:*/*"
    validator: allow-loopback
  - pattern: "localhost:*/*"
    validator: allow-loopback
server:
  host: 127.0.0.1
  port: 8443
registries:
  - host: "127.0.0.1:*"
    insecure: true
  - host: "localhost:*"
    insecure: true
`;

export function embeddedConfig(): Config {
  return parseConfig(EMBEDDED_CONFIG_YAML, EMBEDDED_CONFIG_SOURCE, process.cwd());
}
