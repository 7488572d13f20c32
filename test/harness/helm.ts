/**
 * The Helm chart's real tools: helm (built from the Go module proxy), kubeconform in strict mode with
 * JSON schemas generated from the test kube-apiserver's own OpenAPI document (built-in kinds and every
 * CRD applied to it), and the CRDs of the optional integrations (cert-manager, prometheus-operator),
 * read from their Go modules (`go mod download`, test/tools/install.sh). Nothing is downloaded at test
 * time.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { KubeCluster, KubeObject } from './kube.ts';
import { waitForCrd } from './gatekeeper.ts';
import { PROJECT_ROOT } from './provenant.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 120_000;
const MAX_BUFFER_BYTES = 64 * 1024 * 1024;

/** Keep in step with CRD_MODULES in test/tools/install.sh. */
const CRD_FILES = [
  ['github.com/cert-manager/cert-manager@v1.17.2', 'deploy/crds/crd-certificates.yaml'],
  ['github.com/cert-manager/cert-manager@v1.17.2', 'deploy/crds/crd-issuers.yaml'],
  [
    'github.com/prometheus-operator/prometheus-operator@v0.80.1',
    'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml',
  ],
  [
    'github.com/prometheus-operator/prometheus-operator@v0.80.1',
    'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml',
  ],
] as const;

export const CHART_DIR = path.join(PROJECT_ROOT, 'charts', 'provenant');

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function tool(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await run(command, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      timeout: TOOL_TIMEOUT_MS,
      maxBuffer: MAX_BUFFER_BYTES,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/** The Helm releases the chart is tested with: `helm` is Helm 3, `helm4` Helm 4. */
export type HelmBinary = 'helm' | 'helm4';

/** `helm ARGS` against the cluster (its kubeconfig), with Helm's state kept out of $HOME. */
export function helm(
  args: string[],
  cluster?: KubeCluster,
  binary: HelmBinary = 'helm',
): Promise<ToolResult> {
  return tool(toolPath(binary), args, cluster === undefined ? {} : { KUBECONFIG: cluster.kubeconfig });
}

/** Like helm(), but fails with helm's own message unless it exits 0. */
export async function helmOk(
  args: string[],
  cluster?: KubeCluster,
  binary: HelmBinary = 'helm',
): Promise<string> {
  const result = await helm(args, cluster, binary);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** The objects of a multi-document manifest (helm template / helm get manifest). */
export function manifestObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o.kind === 'string');
}

async function moduleFile(module: string, file: string): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOMODCACHE']);
  const full = path.join(stdout.trim(), module, file);
  try {
    return await readFile(full, 'utf8');
  } catch (err) {
    throw new Error(`${file} of ${module} is not at ${full}: run \`bash test/tools/install.sh e2e\``, {
      cause: err,
    });
  }
}

/** cert-manager's and prometheus-operator's CRDs, established (their own templating labels dropped). */
export async function applyIntegrationCrds(cluster: KubeCluster): Promise<void> {
  const crds: KubeObject[] = [];
  for (const [module, file] of CRD_FILES) {
    for (const crd of manifestObjects(await moduleFile(module, file))) {
      // cert-manager's CRDs are also its chart's templates: their labels hold `{{ … }}` text.
      delete crd.metadata['labels'];
      crds.push(crd);
    }
  }
  for (const crd of crds) await cluster.apply(crd);
  for (const crd of crds) await waitForCrd(cluster, crd.metadata.name);
}

type Schema = Record<string, unknown>;

/**
 * Strict stand-alone JSON schemas, one per kind, from the API server's OpenAPI v2 document, in
 * kubeconform's file naming (`deployment-apps-v1.json`, `pod-v1.json`): references inlined (a
 * recursive one becomes `{}`), `additionalProperties: false` on every object that lists its
 * properties and does not preserve unknown fields, int-or-string as either. What openapi2jsonschema
 * (`--expanded --kubernetes --stand-alone --strict`) writes for kubeconform's own schema repository.
 */
export async function writeKubeconformSchemas(cluster: KubeCluster, dir: string): Promise<number> {
  const res = await cluster.getPath('/openapi/v2');
  if (res.status !== 200) throw new Error(`GET /openapi/v2: ${res.status}`);
  const definitions = (res.body as { definitions: Record<string, Schema> }).definitions;
  await mkdir(dir, { recursive: true });
  let written = 0;
  for (const [name, definition] of Object.entries(definitions)) {
    const gvks = definition['x-kubernetes-group-version-kind'] as
      { group: string; version: string; kind: string }[] | undefined;
    for (const gvk of gvks ?? []) {
      const schema = expand(definition, definitions, [name]);
      const group = gvk.group === '' ? '' : `-${gvk.group.split('.')[0] ?? ''}`;
      const file = `${gvk.kind.toLowerCase()}${group}-${gvk.version}.json`;
      await writeFile(path.join(dir, file), JSON.stringify(schema));
      written++;
    }
  }
  return written;
}

function expand(schema: Schema, definitions: Record<string, Schema>, stack: string[]): Schema {
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    const name = ref.replace('#/definitions/', '');
    if (stack.includes(name)) return {};
    return expand(definitions[name] ?? {}, definitions, [...stack, name]);
  }
  if (schema['format'] === 'int-or-string') return { oneOf: [{ type: 'string' }, { type: 'integer' }] };
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'x-kubernetes-group-version-kind') continue;
    if (key === 'properties') {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([p, s]) => [p, expand(s, definitions, stack)]),
      );
    } else if (key === 'items' || key === 'additionalProperties') {
      out[key] =
        typeof value === 'object' && value !== null ? expand(value as Schema, definitions, stack) : value;
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = (value as Schema[]).map((s) => expand(s, definitions, stack));
    } else {
      out[key] = value;
    }
  }
  if (out['properties'] !== undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out['additionalProperties'] ??= false;
  }
  return out;
}

/** `kubeconform -strict` on a manifest, against the schemas of writeKubeconformSchemas only. */
export function kubeconform(
  manifest: string,
  schemaDir: string,
  skipKinds: string[] = [],
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const args = [
      '-strict',
      '-summary',
      '-output',
      'text',
      '-schema-location',
      `${schemaDir}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
      ...(skipKinds.length > 0 ? ['-skip', skipKinds.join(',')] : []),
      '-',
    ];
    const child = execFile(
      toolPath('kubeconform'),
      args,
      { timeout: TOOL_TIMEOUT_MS },
      (err, stdout, stderr) => {
        if (err === null) resolve({ code: 0, stdout, stderr });
        else if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
        else reject(new Error(`kubeconform did not run: ${err.message}`, { cause: err }));
      },
    );
    child.stdin?.end(manifest);
  });
}
