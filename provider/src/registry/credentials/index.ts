/** Credentials per `registries:` entry, behind one interface whatever their source. */
import type { RegistryConfig } from '../../config/index.ts';
import {
  DockerConfigFileCredentials,
  SecretCredentials,
  StaticCredentials,
  type CredentialSource,
} from './sources.ts';
import type { BasicCredentials } from './docker-config.ts';

export type { BasicCredentials } from './docker-config.ts';
export type { CredentialSource } from './sources.ts';
export { parseDockerConfig, registryKey } from './docker-config.ts';
export { SecretCredentials, DockerConfigFileCredentials, StaticCredentials } from './sources.ts';

export class CredentialStore {
  private readonly sources = new Map<RegistryConfig, CredentialSource>();

  /** The source for a `registries:` entry (created on first use, so an unused Secret is never read). */
  sourceFor(config: RegistryConfig | undefined): CredentialSource | undefined {
    const auth = config?.auth;
    if (config === undefined || auth === undefined) return undefined;
    let source = this.sources.get(config);
    if (source === undefined) {
      source =
        'username' in auth
          ? new StaticCredentials({ username: auth.username, password: auth.password })
          : 'dockerConfig' in auth
            ? new DockerConfigFileCredentials(auth.dockerConfig)
            : new SecretCredentials(auth.secret.namespace, auth.secret.name);
      this.sources.set(config, source);
    }
    return source;
  }

  close(): void {
    for (const s of this.sources.values()) s.close();
    this.sources.clear();
  }
}

export function basicHeader(creds: BasicCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}
