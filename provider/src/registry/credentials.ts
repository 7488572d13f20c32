/**
 * Credentials per registry host. The foundation reads `{ username, password }` from config;
 * Docker config files and Kubernetes Secrets plug in here behind the same interface.
 */
import type { RegistryConfig } from '../config/index.ts';

export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

export function credentialsFor(config: RegistryConfig | undefined): BasicCredentials | undefined {
  const auth = config?.auth;
  if (auth === undefined || !('username' in auth)) return undefined;
  return { username: auth.username, password: auth.password };
}

export function basicHeader(creds: BasicCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}
