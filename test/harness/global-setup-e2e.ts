/**
 * vitest globalSetup for the e2e project: the integration tools plus the heavy ones (etcd,
 * kube-apiserver, the Gatekeeper manager), which take many minutes to build the first time and are
 * cached by version afterwards.
 */
import { installTools } from './global-setup.ts';

export default async function setup(): Promise<void> {
  await installTools(['e2e']);
}
