/** Command-line parsing with node's own util.parseArgs. */
import { parseArgs } from 'node:util';

/** `provenant verify`'s exit codes (README, CLI); EXIT_ERROR is every command's failure. */
export const EXIT_TRUSTED = 0;
export const EXIT_NOT_TRUSTED = 1;
export const EXIT_ERROR = 2;

export const USAGE = `Usage:
  provenant serve [--config FILE] [--port N]
  provenant verify IMAGE... [--config FILE] [--json] [--explain]
  provenant policy test --template FILE [--constraint FILE]... MANIFEST... [--config FILE] [--json] [--unavailable]
  provenant policy test --suite FILE [--config FILE] [--json] [--unavailable]
  provenant migrate connaisseur VALUES.yaml... [--out DIR]
  provenant --help

serve    run the external data provider over HTTPS (no --config: embedded development config)
verify   verify images with the same code path as the server; exit 0 trusted, 1 not trusted, 2 error;
         --explain prints why: rules ranked, validator and trust roots, registry requests,
         signatures, cache, verdict
policy test
         evaluate a Gatekeeper ConstraintTemplate (compiled to WASM with opa from PATH or PROVENANT_OPA)
         against manifests, or run a gator suite.yaml, with external_data answered by this config's
         verification; --unavailable answers as if Provenant were down. Exit 0 no violations (suite:
         every case passed), 1 violations (suite: a case failed), 2 error
migrate connaisseur
         merge Connaisseur Helm values (chart values.yaml first, then overrides, as helm install -f)
         and write provenant.yaml, gatekeeper.yaml, values.yaml and MIGRATION.md to --out (default
         ./provenant-migration); print the report. Exit 0 when the written config loads, 1 when not`;

export interface Parsed {
  readonly command: string | undefined;
  readonly positionals: string[];
  readonly config: string | undefined;
  readonly port: number | undefined;
  readonly json: boolean;
  readonly help: boolean;
  readonly template: string | undefined;
  readonly constraints: string[];
  readonly suite: string | undefined;
  readonly unavailable: boolean;
  readonly out: string | undefined;
  readonly explain: boolean;
}

export function parseCommandLine(argv: string[]): Parsed {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      json: { type: 'boolean', default: false },
      template: { type: 'string' },
      constraint: { type: 'string', multiple: true },
      suite: { type: 'string' },
      unavailable: { type: 'boolean', default: false },
      out: { type: 'string' },
      explain: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new Error(`--port expects an integer from 0 to 65535, found "${values.port}"`);
  }
  return {
    command: positionals[0],
    positionals: positionals.slice(1),
    config: values.config,
    port,
    json: values.json,
    help: values.help,
    template: values.template,
    constraints: values.constraint ?? [],
    suite: values.suite,
    unavailable: values.unavailable,
    out: values.out,
    explain: values.explain,
  };
}
