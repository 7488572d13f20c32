/**
 * Helm's values merge, as `helm install -f chart-values.yaml -f a.yaml -f b.yaml` does it
 * (helm.sh/helm/v3 pkg/chartutil coalesce.go): maps merge key by key, recursively; any other value
 * (a list, a scalar) replaces the earlier one whole; a `null` deletes the key.
 */
export type Values = Record<string, unknown>;

export function isValues(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergeValues(layers: readonly Values[]): Values {
  return layers.reduce<Values>((merged, layer) => mergeInto(merged, layer), {});
}

function mergeInto(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else if (isValues(value) && isValues(out[key])) out[key] = mergeInto(out[key], value);
    else out[key] = structuredClone(value);
  }
  return out;
}

/** `${NAME}` placeholders that Connaisseur's test scripts (envsubst) fill, with their paths. */
export function placeholders(value: unknown, at = ''): { path: string; names: string[] }[] {
  if (typeof value === 'string') {
    const names = [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] as string);
    return names.length > 0 ? [{ path: at, names }] : [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholders(v, `${at}[${i}]`));
  if (isValues(value))
    return Object.entries(value).flatMap(([k, v]) => placeholders(v, at ? `${at}.${k}` : k));
  return [];
}
