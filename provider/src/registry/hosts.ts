/**
 * Which `registries:` entry applies to a registry host: an exact `host` first, then the first entry
 * whose `host` is a glob that matches (`127.0.0.1:*`, `*.dkr.ecr.us-east-1.amazonaws.com`).
 */
import type { RegistryConfig } from '../config/index.ts';
import { compilePattern } from '../policy/index.ts';

export class RegistryHosts {
  private readonly globs: { regex: RegExp; config: RegistryConfig }[];
  private readonly exact: Map<string, RegistryConfig>;

  constructor(registries: readonly RegistryConfig[]) {
    this.exact = new Map(registries.filter((r) => !isGlob(r.host)).map((r) => [r.host.toLowerCase(), r]));
    this.globs = registries
      .filter((r) => isGlob(r.host))
      .map((r) => ({ regex: compilePattern(r.host.toLowerCase()).regex, config: r }));
  }

  lookup(host: string): RegistryConfig | undefined {
    return this.exact.get(host) ?? this.globs.find((g) => g.regex.test(host))?.config;
  }
}

function isGlob(host: string): boolean {
  return /[*?[{]/.test(host);
}
