/**
 * Which `registries:` entry applies to a registry host: an exact `host` first, then the first entry
 * whose `host` is a glob that matches (`127.0.0.1:*`, `*.dkr.ecr.us-east-1.amazonaws.com`).
 */
import type { RegistryConfig } from '../config/index.ts';
import { compileGlob, type Glob } from '../glob/index.ts';

export class RegistryHosts {
  private readonly globs: { glob: Glob; config: RegistryConfig }[];
  private readonly exact: Map<string, RegistryConfig>;

  constructor(registries: readonly RegistryConfig[]) {
    this.exact = new Map(registries.filter((r) => !isGlob(r.host)).map((r) => [r.host.toLowerCase(), r]));
    this.globs = registries
      .filter((r) => isGlob(r.host))
      .map((r) => ({ glob: compileGlob(r.host.toLowerCase()), config: r }));
  }

  lookup(host: string): RegistryConfig | undefined {
    return this.exact.get(host) ?? this.globs.find((g) => g.glob.matches(host))?.config;
  }
}

function isGlob(host: string): boolean {
  return /[*?[{]/.test(host);
}
