/**
 * Gatekeeper registers `external_data` in its own OPA runtime; stock OPA does not know it. This is the
 * declaration merged into `opa capabilities --current`, so that `opa check --strict`, `opa test` and
 * `opa build -t wasm` accept templates that call it (policies/gatekeeper/external-data.capabilities.json
 * holds the same declaration for people running opa by hand; a unit test keeps the two equal).
 */
export const EXTERNAL_DATA_BUILTIN = 'external_data';

export const EXTERNAL_DATA_CAPABILITIES = {
  builtins: [
    {
      name: EXTERNAL_DATA_BUILTIN,
      description:
        "Gatekeeper's external data call: sends request.keys to the Provider named request.provider and returns {responses, errors, system_error, status_code}. Registered by the Gatekeeper manager, not by OPA; merged into `opa capabilities --current` for opa check, opa test and opa build.",
      decl: {
        type: 'function',
        args: [
          {
            name: 'request',
            type: 'object',
            dynamic: { key: { type: 'string' }, value: { type: 'any' } },
          },
        ],
        result: {
          name: 'response',
          type: 'object',
          dynamic: { key: { type: 'any' }, value: { type: 'any' } },
        },
      },
      nondeterministic: true,
    },
  ],
} as const;

/** OPA's own capabilities (the JSON of `opa capabilities --current`) plus external_data. */
export function withExternalData(current: unknown): object {
  if (
    typeof current !== 'object' ||
    current === null ||
    !Array.isArray((current as { builtins?: unknown }).builtins)
  ) {
    throw new Error('expected `opa capabilities --current` to print a JSON object with a builtins array');
  }
  const base = current as { builtins: { name?: unknown }[] };
  const builtins = base.builtins.filter((b) => b.name !== EXTERNAL_DATA_BUILTIN);
  return { ...base, builtins: [...builtins, ...EXTERNAL_DATA_CAPABILITIES.builtins] };
}
