/**
 * `provenant policy test`: Gatekeeper's Rego, offline, with `external_data` answered by this
 * config's verification (the service layer the server runs), so templates that call Provenant can be
 * tested before they reach a cluster; gator cannot, since only Gatekeeper's manager has the builtin.
 */
import {
  HTTP_OK,
  loadConstraints,
  loadObjects,
  loadTemplate,
  runSuite,
  systemErrorResponse,
  testObject,
  type ExternalDataResolver,
  type ExternalDataResponse,
  type ObjectResult,
  type SuiteCaseResult,
} from '../policy/rego/index.ts';
import { renderMutate, renderVerify, type Render } from '../http/index.ts';
import { Runtime } from '../service/index.ts';
import type { Parsed } from './args.ts';
import { loadConfig, printWarnings } from './load.ts';

export const EXIT_NO_VIOLATIONS = 0;
export const EXIT_VIOLATIONS = 1;

/** Provider names of gatekeeper/provider.yaml and what each answers (the /v1/verify and /v1/mutate values). */
const PROVIDERS: Record<string, Render> = { provenant: renderVerify, 'provenant-mutate': renderMutate };

export const UNAVAILABLE_MESSAGE =
  'provenant policy test --unavailable: Provenant is unreachable (simulated, as when Gatekeeper cannot connect)';

export async function policy(args: Parsed, out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...manifests] = args.positionals;
  if (sub !== 'test') throw new Error(`expected "policy test", found "policy ${sub ?? ''}"`);
  if ((args.suite === undefined) === (args.template === undefined)) {
    throw new Error('policy test expects either --suite FILE or --template FILE with MANIFEST files');
  }
  const loaded = loadConfig(args.config);
  printWarnings(loaded);
  const runtime = new Runtime(loaded.config, loaded.source);
  try {
    await runtime.ready();
    const resolve = args.unavailable
      ? () => Promise.resolve(systemErrorResponse(UNAVAILABLE_MESSAGE))
      : verifierResolver(runtime);
    if (args.suite !== undefined) {
      const results = await runSuite(args.suite, resolve);
      out.write(args.json ? `${JSON.stringify(results, null, 2)}\n` : results.map(suiteText).join(''));
      return results.every((r) => r.passed) ? EXIT_NO_VIOLATIONS : EXIT_VIOLATIONS;
    }
    if (manifests.length === 0) throw new Error('policy test --template expects at least one MANIFEST file');
    const template = await loadTemplate(args.template as string);
    const constraints = (await Promise.all(args.constraints.map((c) => loadConstraints(c, template)))).flat();
    const results: ObjectResult[] = [];
    for (const file of manifests) {
      for (const object of await loadObjects(file)) {
        results.push(await testObject(template, constraints, object, resolve));
      }
    }
    out.write(args.json ? `${JSON.stringify(results, null, 2)}\n` : results.map(objectText).join(''));
    return results.some((r) => r.findings.length > 0) ? EXIT_VIOLATIONS : EXIT_NO_VIOLATIONS;
  } finally {
    await runtime.close();
  }
}

/** Answers like the server's routes: item errors per image, a transient failure as system_error. */
function verifierResolver(runtime: Runtime): ExternalDataResolver {
  return async ({ provider, keys }): Promise<ExternalDataResponse> => {
    const render = PROVIDERS[provider];
    if (render === undefined) {
      return systemErrorResponse(
        `provider "${provider}" is not one provenant policy test answers; expected one of ${Object.keys(PROVIDERS).join(', ')}`,
      );
    }
    const unique = [...new Set(keys)];
    const outcomes = await runtime.verifier.verifyAll(unique);
    const transient = outcomes.find((o) => !o.ok && o.error.transient);
    if (transient !== undefined && !transient.ok) return systemErrorResponse(transient.error.toItemError());
    const responses: [string, unknown][] = [];
    const errors: [string, string][] = [];
    outcomes.forEach((o, i) => {
      const key = unique[i] as string;
      if (o.ok) responses.push([key, render(o.verdict)]);
      else errors.push([key, o.error.toItemError()]);
    });
    return { responses, errors, system_error: '', status_code: HTTP_OK };
  };
}

function objectText(r: ObjectResult): string {
  const lines = r.findings.map((f) => `  ${f.constraint} [${f.enforcementAction}]: ${f.msg}\n`);
  return `${r.verdict.padEnd(8)} ${r.object}\n${lines.join('')}`;
}

function suiteText(r: SuiteCaseResult): string {
  const head = `${r.passed ? 'PASS' : 'FAIL'}  ${r.test} / ${r.case}: ${r.result.verdict} ${r.result.object}\n`;
  const why = r.failure === undefined ? '' : `  ${r.failure}\n`;
  return (
    head +
    why +
    r.result.findings.map((f) => `  ${f.constraint} [${f.enforcementAction}]: ${f.msg}\n`).join('')
  );
}
