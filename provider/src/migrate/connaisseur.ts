/**
 * `provenant migrate connaisseur`: Connaisseur v3 Helm values (chart defaults merged with the user's
 * overrides) → a Provenant config, the Gatekeeper constraint and mutators that reproduce its
 * `features:`, provisional values for Provenant's chart, the Kyverno settings to choose, and a report
 * of every setting: carried over, carried over with a changed meaning (naming the rule that changed),
 * or not carried over and why. Pure: no I/O (the CLI reads and writes files).
 * Reference: shared/reference/connaisseur-config.md (keys and Connaisseur's code defaults).
 */
import { anchoredForm, decisionChanges, substringInvariant, type Rule } from './rules.ts';
import { isValues, mergeValues, placeholders, type Values } from './values.ts';

export type Status = 'carried' | 'changed' | 'dropped';

export interface ReportEntry {
  /** The Connaisseur values path (`application.policy[2].pattern`). */
  readonly path: string;
  readonly status: Status;
  /** For `changed`: the rule whose meaning differs (a README section). */
  readonly rule?: string;
  readonly note: string;
  /** A change that weakens what Connaisseur enforced: read it before applying. */
  readonly warning?: boolean;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

/** The shipped manifests the Gatekeeper output is made from (gatekeeper/ in the package). */
export interface ShippedGatekeeper {
  readonly constraint: KubeObject;
  readonly podMutators: readonly KubeObject[];
  readonly workloadMutators: readonly KubeObject[];
}

/** Connaisseur's own namespace label (§3 namespacedValidation). */
export const CONNAISSEUR_NAMESPACE_LABEL = 'securesystemsengineering.connaisseur/webhook';

export interface GatekeeperSettings {
  readonly enforcementAction: 'deny' | 'warn';
  readonly failurePolicy: 'Fail' | 'Ignore';
  readonly namespaceSelector?: {
    matchExpressions: { key: string; operator: 'In' | 'NotIn'; values: string[] }[];
  };
  readonly podsOnly: boolean;
  readonly automaticUnchangedApproval: boolean;
}

export interface Migration {
  readonly config: Values;
  readonly gatekeeper: { readonly settings: GatekeeperSettings; readonly objects: KubeObject[] };
  /** Values for charts/provenant: the config at the top level, the Gatekeeper policies as `features:` say. */
  readonly chartValues: Values;
  /** The fields of the shipped Kyverno policies to set so they reproduce `features:`. */
  readonly kyverno: string[];
  readonly report: ReportEntry[];
}

const README_ANCHORED = 'anchored patterns (README "Connaisseur users")';
const README_HUB = 'Docker Hub ranking (README "Connaisseur users")';
const README_THRESHOLD = 'threshold counting (README "cosign validator": distinct signers)';

export function migrateConnaisseur(layers: readonly Values[], shipped: ShippedGatekeeper): Migration {
  const values = mergeValues(layers);
  const report: ReportEntry[] = [];
  const add = (e: ReportEntry): void => void report.push(e);
  if (!isValues(layers[0]?.['kubernetes'])) {
    add({
      path: '(chart defaults)',
      status: 'changed',
      note: "the first file is not Connaisseur's chart values.yaml: settings it leaves out take Connaisseur's code defaults (pass `helm show values` output first to merge as helm install does)",
    });
  }
  for (const p of placeholders(values)) {
    add({
      path: p.path,
      status: 'dropped',
      warning: true,
      note: `unfilled placeholder ${p.names.map((n) => `\${${n}}`).join(', ')}: fill it in the values (envsubst) before migrating; the config will not load with it`,
    });
  }
  const application = isValues(values['application']) ? values['application'] : {};
  const features = isValues(application['features']) ? application['features'] : {};

  const validators = migrateValidators(asList(application['validators']), add);
  const policy = migratePolicy(asList(application['policy']), validators.config, add);
  const registries = validators.registries(policy.rules);
  const cache = migrateCache(features['cache'], add);
  const log = migrateLog(application, add);
  const alerting = migrateAlerting(values['alerting'], add);
  const settings = migrateFeatures(features, values['kubernetes'], add);
  reportUnknown(
    application,
    ['validators', 'policy', 'features', 'logLevel', 'logFormat'],
    'application',
    add,
  );
  reportUnknown(
    features,
    [
      'cache',
      'detectionMode',
      'namespacedValidation',
      'automaticUnchangedApproval',
      'automaticChildApproval',
      'resourceValidationMode',
    ],
    'application.features',
    add,
  );
  reportUnknown(values, ['kubernetes', 'application', 'alerting'], '', add);
  const replicas = migrateKubernetes(values['kubernetes'], add);

  const config: Values = {
    validators: validators.config,
    policy: policy.rules,
    ...(registries.length > 0 ? { registries } : {}),
    cache,
    log,
    ...(alerting !== undefined ? { alerting } : {}),
  };
  return {
    config,
    gatekeeper: { settings, objects: gatekeeperObjects(settings, shipped) },
    chartValues: chartValues(config, settings, replicas),
    kyverno: kyvernoSettings(settings),
    report,
  };
}

/**
 * Values for charts/provenant: the config's sections at the top level (the chart's values take the
 * config file's shape), and its Gatekeeper policies set as `features:` ask. The constraint needs the
 * template's CRD first: MIGRATION.md says to install with it off and turn it on in an upgrade.
 */
function chartValues(config: Values, settings: GatekeeperSettings, replicas: number | undefined): Values {
  return {
    ...(replicas !== undefined ? { replicaCount: replicas } : {}),
    ...config,
    gatekeeper: {
      policies: {
        template: true,
        constraint: {
          enabled: true,
          enforcementAction: settings.enforcementAction,
          failurePolicy: settings.failurePolicy,
          podsOnly: settings.podsOnly,
          automaticUnchangedApproval: settings.automaticUnchangedApproval,
        },
        mutations: { enabled: true, podsOnly: settings.podsOnly },
        ...(settings.namespaceSelector !== undefined
          ? { namespaceSelector: settings.namespaceSelector }
          : {}),
      },
    },
  };
}

/** A scalar value as Helm would template it; anything else (absent, a map, a list) is `fallback`. */
function text(v: unknown, fallback: string): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : fallback;
}

function asList(v: unknown): Values[] {
  return Array.isArray(v) ? v.filter(isValues) : [];
}

function reportUnknown(
  section: Values,
  known: readonly string[],
  at: string,
  add: (e: ReportEntry) => void,
): void {
  for (const key of Object.keys(section)) {
    if (known.includes(key)) continue;
    add({
      path: at ? `${at}.${key}` : key,
      status: 'dropped',
      note: 'not a Connaisseur v3 setting (Helm passed it to no template), so nothing to carry over',
    });
  }
}

// ---------------------------------------------------------------- validators and registry credentials

interface MigratedValidators {
  readonly config: Values[];
  /** registries: entries for the credentials of validator-level `auth`, once the rules are known. */
  registries(rules: readonly Rule[]): Values[];
}

const COSIGN_UNUSED_HOST_KEYS = ['rekor'];

function migrateValidators(list: Values[], add: (e: ReportEntry) => void): MigratedValidators {
  const pending: { validator: Values; auth: Values; at: string }[] = [];
  const config = list.map((source, i) => {
    const at = `application.validators[${i}]`;
    const v = structuredClone(source);
    const name = String(v['name']);
    add({ path: at, status: 'carried', note: `validator "${name}" (${String(v['type'])}) unchanged` });
    if (isValues(v['auth'])) {
      pending.push({ validator: v, auth: v['auth'], at: `${at}.auth` });
      delete v['auth'];
    }
    if (v['type'] === 'cosign' && isValues(v['host'])) {
      const host = v['host'];
      for (const key of COSIGN_UNUSED_HOST_KEYS) {
        if (host[key] === undefined) continue;
        delete host[key];
        add({
          path: `${at}.host.${key}`,
          status: 'dropped',
          note: 'Provenant never queries Rekor online: a signature must carry its log entry, checked offline against the trusted root',
        });
      }
      if (Object.keys(host).length === 0) delete v['host'];
    }
    if ((v['type'] === 'cosign' || v['type'] === 'notation') && v['cert'] !== undefined) {
      delete v['cert'];
      add({
        path: `${at}.cert`,
        status: 'dropped',
        note: "the registry's TLS CA belongs to a registries: entry (`ca: file`), which applies to every validator",
      });
    }
    asList(v['trustRoots']).forEach((root, j) => {
      const key = root['key'];
      if (typeof key !== 'string' || key.includes('-----BEGIN')) return;
      add({
        path: `${at}.trustRoots[${j}].key`,
        status: /^[a-z0-9]+:\/\//i.test(key) ? 'dropped' : 'changed',
        warning: true,
        note: /^[a-z0-9]+:\/\//i.test(key)
          ? 'KMS key references are not supported: export the public key as PEM and put it here'
          : `read as a PEM file relative to the config file: place ${key} next to it`,
      });
    });
    return v;
  });
  return {
    config,
    registries: (rules) => {
      const entries = new Map<string, Values>();
      for (const { validator, auth, at } of pending) {
        for (const entry of authEntries(validator, auth, rules, at, add)) {
          const host = String(entry['host']);
          if (entries.has(host)) {
            add({
              path: at,
              status: 'dropped',
              note: `a registries: entry for ${host} already came from another validator; Provenant has one per host`,
            });
          } else entries.set(host, entry);
        }
      }
      return [...entries.values()];
    },
  };
}

/** Connaisseur's validator `auth` (§1.3) → registries: entries for the hosts it was used for. */
function authEntries(
  validator: Values,
  auth: Values,
  rules: readonly Rule[],
  at: string,
  add: (e: ReportEntry) => void,
): Values[] {
  const notary = validator['type'] === 'notaryv1';
  if (auth['useKeychain'] === true && auth['secretName'] === undefined && auth['username'] === undefined) {
    add({
      path: `${at}.useKeychain`,
      status: 'dropped',
      warning: true,
      note: 'ambient cloud credentials (k8schain) are not read: give a registries: entry with auth.secret (a dockerconfigjson Secret) or auth.dockerConfig',
    });
    return [];
  }
  const hosts =
    typeof auth['registry'] === 'string'
      ? [registryHost(auth['registry'])]
      : notary
        ? [registryHost(text(validator['host'], 'notary.docker.io'))]
        : ruleRegistries(String(validator['name']), rules);
  if (hosts.length === 0) {
    add({
      path: at,
      status: 'dropped',
      warning: true,
      note: 'no rule of this validator names a registry, so there is no host to give these credentials to: add a registries: entry with auth for each registry it reads',
    });
    return [];
  }
  let credentials: Values;
  let note: string;
  if (typeof auth['username'] === 'string') {
    credentials = { username: auth['username'], password: text(auth['password'], '') };
    note =
      'username/password carried into registries[].auth (the password is in the config file: mount it from a Secret)';
  } else if (typeof auth['secretName'] === 'string') {
    credentials = { secret: { namespace: 'provenant', name: auth['secretName'] } };
    note = `Secret ${auth['secretName']} read from namespace "provenant" (change it to Provenant's namespace); Provenant reads only kubernetes.io/dockerconfigjson Secrets, not Connaisseur's secret.yaml form`;
  } else {
    add({
      path: at,
      status: 'dropped',
      warning: true,
      note: 'neither secretName nor username: Connaisseur refused this at start',
    });
    return [];
  }
  add({
    path: at,
    status: 'changed',
    rule: 'credentials per registry (README "Configuration", registries)',
    note: `${note}; for ${hosts.join(', ')} and every validator reading them`,
  });
  return hosts.map((host) => ({ host, auth: credentials }));
}

function registryHost(value: string): string {
  const host = value.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/** The literal registries of the (migrated) rules that use `validator`. */
function ruleRegistries(validator: string, rules: readonly Rule[]): string[] {
  const hosts = new Set<string>();
  for (const rule of rules) {
    if ((rule.validator ?? 'default') !== validator) continue;
    const first = rule.pattern.split('/', 1)[0] as string;
    if (rule.pattern.includes('/') && /[.:]/.test(first) && !/[*?[{\\]/.test(first))
      hosts.add(registryHost(first));
  }
  return [...hosts];
}

// ---------------------------------------------------------------------------------------------- policy

function migratePolicy(
  list: Values[],
  validators: readonly Values[],
  add: (e: ReportEntry) => void,
): { rules: Rule[] } {
  const original = list.map((r) => structuredClone(r) as unknown as Rule);
  const staticApprove = new Map(
    validators.filter((v) => v['type'] === 'static').map((v) => [String(v['name']), v['approve'] === true]),
  );
  const denies = (r: Rule): boolean => staticApprove.get(r.validator ?? 'default') === false;
  const typeOf = (r: Rule): unknown =>
    validators.find((v) => v['name'] === (r.validator ?? 'default'))?.['type'];
  const rules = original.map((rule, i) => {
    const at = `application.policy[${i}]`;
    const form = anchoredForm(rule.pattern);
    const narrowed = denies(rule)
      ? ' This is a deny rule: narrowing it lets through what it used to deny; check the decisions below.'
      : '';
    if (form !== undefined) {
      add({
        path: `${at}.pattern`,
        status: 'changed',
        rule: README_ANCHORED,
        warning: denies(rule),
        note: `"${rule.pattern}" → "${form}": Connaisseur matched "*${rule.pattern}*" anywhere in the reference; Provenant matches the whole normalised reference, where an image named without a registry is on Docker Hub.${narrowed}`,
      });
    } else if (substringInvariant(rule.pattern)) {
      add({ path: `${at}.pattern`, status: 'carried', note: `"${rule.pattern}" matches the same images` });
    } else {
      add({
        path: `${at}.pattern`,
        status: 'changed',
        rule: README_ANCHORED,
        warning: denies(rule),
        note: `"${rule.pattern}" now matches only whole references (Connaisseur: anywhere, as "*${rule.pattern}*").${narrowed}`,
      });
    }
    const w = rule.with ?? {};
    if (typeOf(rule) === 'cosign' && (w['trustRoot'] === '*' || w['threshold'] !== undefined)) {
      add({
        path: `${at}.with`,
        status: 'changed',
        rule: README_THRESHOLD,
        note: 'Connaisseur counted valid signatures (a copied signature or one signer signing twice counted twice); Provenant counts trust roots with a signature of their own',
      });
    }
    return form === undefined ? rule : { ...rule, pattern: form };
  });
  if (rules.some((r) => r.pattern.startsWith('docker.io/'))) {
    add({
      path: 'application.policy',
      status: 'changed',
      rule: README_HUB,
      note: 'Docker Hub is spelled docker.io when rules are ranked: a docker.io/… pattern now scores its registry as a literal prefix (Connaisseur scored docker.io like "*" against index.docker.io); the images whose deciding rule changes are listed below (none listed: none found among the images the patterns name)',
    });
  }
  for (const change of decisionChanges(original, rules, denies)) {
    const name = (i: number | undefined): string =>
      i === undefined
        ? 'no rule (denied)'
        : `rule ${i} "${original[i]?.pattern}" → ${original[i]?.validator ?? 'default'}`;
    const newName = (i: number | undefined): string =>
      i === undefined
        ? 'no rule (denied)'
        : `rule ${i} "${rules[i]?.pattern}" → ${rules[i]?.validator ?? 'default'}`;
    const weaker = change.connaisseur !== undefined && denies(original[change.connaisseur] as Rule);
    add({
      path: `application.policy (image ${change.image})`,
      status: 'changed',
      rule: change.because === 'anchored patterns' ? README_ANCHORED : README_HUB,
      warning: weaker,
      note: `Connaisseur decided by ${name(change.connaisseur)}, Provenant by ${newName(change.provenant)}`,
    });
  }
  return { rules };
}

// ------------------------------------------------------------------------------------- the rest

function migrateCache(cache: unknown, add: (e: ReportEntry) => void): Values {
  const c = isValues(cache) ? cache : {};
  const expiry = typeof c['expirySeconds'] === 'number' ? c['expirySeconds'] : 30;
  const ttl = Math.max(0, Math.floor(expiry));
  const cacheErrors = c['cacheErrors'] !== false;
  add({
    path: 'application.features.cache.expirySeconds',
    status: 'carried',
    note: `cache.ttlSeconds: ${ttl}${ttl === 0 ? ' (caching off, as Connaisseur with ≤ 0)' : ''}; Provenant caches in process (cache.redis to share between replicas)`,
  });
  add({
    path: 'application.features.cache.cacheErrors',
    status: 'changed',
    rule: 'caching (README "Configuration", Caching)',
    note: cacheErrors
      ? `cache.negativeTtlSeconds: ${ttl}: rejections cached as long as verdicts, but transient failures (registry down, timeouts) are never cached`
      : 'cache.negativeTtlSeconds: 0: rejections are not cached',
  });
  return { ttlSeconds: ttl, negativeTtlSeconds: cacheErrors ? ttl : 0 };
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'];

function migrateLog(application: Values, add: (e: ReportEntry) => void): Values {
  const level = text(application['logLevel'], 'info').toLowerCase();
  const known = LOG_LEVELS.includes(level);
  add({
    path: 'application.logLevel',
    status: known ? 'carried' : 'dropped',
    note: known ? `log.level: ${level}` : `unknown level "${level}": log.level stays info`,
  });
  if (application['logFormat'] !== undefined) {
    add({
      path: 'application.logFormat',
      status: 'dropped',
      note: 'Provenant always logs one JSON object per line (pino); pretty-print with a log viewer',
    });
  }
  return { level: known ? level : 'info' };
}

const RECEIVER_KEYS = [
  'template',
  'receiverUrl',
  'priority',
  'customHeaders',
  'payloadFields',
  'failIfAlertSendingFails',
];

function migrateAlerting(alerting: unknown, add: (e: ReportEntry) => void): Values | undefined {
  if (!isValues(alerting)) return undefined;
  const out: Values = {};
  if (alerting['clusterIdentifier'] !== undefined)
    out['clusterIdentifier'] = text(alerting['clusterIdentifier'], 'not specified');
  for (const stream of ['admitRequest', 'rejectRequest'] as const) {
    const s = alerting[stream];
    if (!isValues(s)) continue;
    const receivers = asList(s['receivers']).map((r, i) => {
      const at = `alerting.${stream}.receivers[${i}]`;
      const kept: Values = {};
      for (const [k, v] of Object.entries(r)) {
        if (RECEIVER_KEYS.includes(k)) kept[k] = v;
        else add({ path: `${at}.${k}`, status: 'dropped', note: 'not a Connaisseur receiver field' });
      }
      add({
        path: at,
        status: 'changed',
        rule: 'alerting per image (README "Alerting")',
        note: `template ${String(r['template'])} to ${String(r['receiverUrl']).replace(/\?.*$/, '')}: sent per image verdict (Provenant sees images, not admission requests: namespace and request_id are "unknown"), de-duplicated while the verdict is cached`,
      });
      return kept;
    });
    out[stream] = { receivers };
  }
  add({
    path: 'alerting.clusterIdentifier',
    status: 'carried',
    note: `alerting.clusterIdentifier: ${text(out['clusterIdentifier'], 'not specified')}`,
  });
  return out;
}

function migrateFeatures(
  features: Values,
  kubernetes: unknown,
  add: (e: ReportEntry) => void,
): GatekeeperSettings {
  const detection = features['detectionMode'] === true;
  add({
    path: 'application.features.detectionMode',
    status: 'carried',
    note: detection
      ? 'constraint enforcementAction: warn (admitted, the violation returned as a warning, as Connaisseur did); Kyverno: Audit'
      : 'constraint enforcementAction: deny',
  });
  const ns = isValues(features['namespacedValidation']) ? features['namespacedValidation'] : undefined;
  const mode = ns === undefined ? undefined : text(ns['mode'], 'ignore');
  let namespaceSelector: GatekeeperSettings['namespaceSelector'];
  if (mode === 'ignore' || mode === 'validate') {
    namespaceSelector = {
      matchExpressions: [
        { key: CONNAISSEUR_NAMESPACE_LABEL, operator: mode === 'ignore' ? 'NotIn' : 'In', values: [mode] },
      ],
    };
    add({
      path: 'application.features.namespacedValidation.mode',
      status: 'carried',
      note: `namespaceSelector on the constraint and mutators: label ${CONNAISSEUR_NAMESPACE_LABEL} ${mode === 'ignore' ? 'NotIn [ignore]' : 'In [validate]'} (your namespace labels keep working)`,
    });
  } else if (mode !== undefined) {
    add({
      path: 'application.features.namespacedValidation.mode',
      status: 'dropped',
      warning: true,
      note: `unknown mode "${mode}": every namespace is validated`,
    });
  }
  const unchanged = features['automaticUnchangedApproval'] === true;
  add({
    path: 'application.features.automaticUnchangedApproval',
    status: 'carried',
    note: `constraint parameters.automaticUnchangedApproval: ${unchanged}${unchanged ? ' (on UPDATE, images already in the old object are not sent to Provenant; the mutators still pin, from the cache)' : ''}`,
  });
  if (features['automaticChildApproval'] !== undefined) {
    add({
      path: 'application.features.automaticChildApproval',
      status: features['automaticChildApproval'] === false ? 'carried' : 'changed',
      rule: 'automatic child approval (README "Gatekeeper": children are verified from the cache)',
      note: "not needed: the workload mutators pin the Pod template to digests, so a child Pod's images are digest references whose verdicts are cached (a cached 10-image Pod is answered in about a millisecond); Provenant never skips a Pod because of its owner",
    });
  }
  const podsOnly = text(features['resourceValidationMode'], 'all').toLowerCase() === 'podsonly';
  add({
    path: 'application.features.resourceValidationMode',
    status: 'carried',
    note: podsOnly
      ? 'constraint matches Pods only; mutators: gatekeeper/mutations-pods-only (workloads are admitted as written, without the warning Connaisseur added)'
      : 'constraint matches Pods and workload templates; mutators: gatekeeper/mutations',
  });
  const webhook = isValues(kubernetes) && isValues(kubernetes['webhook']) ? kubernetes['webhook'] : {};
  const failurePolicy = webhook['failurePolicy'] === 'Ignore' ? 'Ignore' : 'Fail';
  return {
    enforcementAction: detection ? 'warn' : 'deny',
    failurePolicy,
    ...(namespaceSelector !== undefined ? { namespaceSelector } : {}),
    podsOnly,
    automaticUnchangedApproval: unchanged,
  };
}

/** kubernetes.*: Connaisseur's own Deployment; only the replica count and webhook failure policy map. */
function migrateKubernetes(kubernetes: unknown, add: (e: ReportEntry) => void): number | undefined {
  if (!isValues(kubernetes)) return undefined;
  let replicas: number | undefined;
  for (const [section, value] of Object.entries(kubernetes)) {
    const at = `kubernetes.${section}`;
    if (section === 'webhook' && isValues(value)) {
      for (const key of Object.keys(value)) {
        add(
          key === 'failurePolicy'
            ? {
                path: `${at}.${key}`,
                status: 'carried',
                note: `constraint parameters.failurePolicy: ${String(value[key])} (what a Provenant outage means)`,
              }
            : {
                path: `${at}.${key}`,
                status: 'dropped',
                note: 'Gatekeeper owns the admission webhooks; its own chart sets them',
              },
        );
      }
      continue;
    }
    if (section === 'deployment' && isValues(value) && typeof value['replicasCount'] === 'number') {
      replicas = value['replicasCount'];
      add({ path: `${at}.replicasCount`, status: 'carried', note: `chart values replicaCount: ${replicas}` });
    }
    add({
      path: at,
      status: 'dropped',
      note:
        section === 'redis'
          ? 'Provenant caches in process; replicas may share a Redis (cache.redis with cache.hmacKey) that you deploy'
          : "Connaisseur's own Deployment and Service: set the equivalent in Provenant's chart values",
    });
  }
  return replicas;
}

// ------------------------------------------------------------------------------ engine settings

function gatekeeperObjects(s: GatekeeperSettings, shipped: ShippedGatekeeper): KubeObject[] {
  const constraint = structuredClone(shipped.constraint);
  const spec = (constraint.spec ??= {});
  spec['enforcementAction'] = s.enforcementAction;
  const match = (spec['match'] ??= {}) as Values;
  if (s.podsOnly) match['kinds'] = [{ apiGroups: [''], kinds: ['Pod'] }];
  if (s.namespaceSelector !== undefined) match['namespaceSelector'] = s.namespaceSelector;
  spec['parameters'] = {
    ...(isValues(spec['parameters']) ? spec['parameters'] : {}),
    failurePolicy: s.failurePolicy,
    automaticUnchangedApproval: s.automaticUnchangedApproval,
  };
  const mutators = [...shipped.podMutators, ...(s.podsOnly ? [] : shipped.workloadMutators)].map((m) => {
    const copy = structuredClone(m);
    if (s.namespaceSelector !== undefined)
      ((copy.spec ??= {})['match'] as Values)['namespaceSelector'] = s.namespaceSelector;
    return copy;
  });
  return [constraint, ...mutators];
}

function kyvernoSettings(s: GatekeeperSettings): string[] {
  // The fields are those policies/kyverno/README.md documents ("Settings"), for both generations.
  const selector = s.namespaceSelector?.matchExpressions[0];
  const validateMode = selector?.operator === 'In';
  return [
    s.enforcementAction === 'warn'
      ? 'detectionMode: provenant-verify-images and provenant-verify-ephemeral-containers: spec.validationActions: [Audit, Warn]; provenant-verify-images-clusterpolicy: spec.validationFailureAction: Audit'
      : 'enforcement: Deny (the shipped default)',
    s.podsOnly
      ? 'podsOnly: both CEL policies: spec.autogen.podControllers.controllers: []; both ClusterPolicies: annotation pod-policies.kyverno.io/autogen-controllers: none'
      : 'resources: Pods and the Pod templates of workloads (the shipped default, autogen)',
    validateMode
      ? `namespacedValidation validate: matchConstraints.namespaceSelector (CEL) / match.any[].resources.namespaceSelector (ClusterPolicy): ${selector.key} In [${selector.values.join(', ')}]`
      : `namespaces: every one but the system namespaces; the label ${CONNAISSEUR_NAMESPACE_LABEL}: ignore skips one (the shipped default)`,
    s.automaticUnchangedApproval
      ? 'automaticUnchangedApproval: the automatic-unchanged-approval match condition: cel.bind(automaticUnchangedApproval, true, …) (CEL); the second precondition !`true` (ClusterPolicy)'
      : 'on UPDATE: every image verified (the shipped default)',
    s.failurePolicy === 'Fail'
      ? 'Provenant unreachable: deny (failurePolicy: Fail, the shipped default)'
      : 'Provenant unreachable: admit: spec.failurePolicy: Ignore on the verify policies (both of the CEL file)',
  ];
}
