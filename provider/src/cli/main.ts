/**
 * The `provenant` command. Returns the exit code; never throws. Each command's modules are loaded when
 * it runs: `serve` starts without the Rego test runner, the migration tool or the CLI's printers.
 */
import { toProvenantError } from '../types/errors.ts';
import { EXIT_ERROR, USAGE, parseCommandLine } from './args.ts';
import type { Shutdown } from './serve.ts';

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseCommandLine(argv);
    if (args.help || args.command === undefined) {
      process.stdout.write(`${USAGE}\n`);
      return args.help ? 0 : EXIT_ERROR;
    }
    switch (args.command) {
      case 'serve':
        return await (await import('./serve.ts')).serve(args, shutdownSignals());
      case 'verify':
        return await (await import('./verify.ts')).verify(args, process.stdout);
      case 'policy':
        return await (await import('./policy-test.ts')).policy(args, process.stdout);
      case 'migrate':
        return (await import('./migrate.ts')).migrate(args, process.stdout);
      default:
        throw new Error(`unknown command "${args.command}"`);
    }
  } catch (err) {
    const error = toProvenantError(err);
    const text = error.code === 'INTERNAL' && err instanceof Error ? err.message : error.toItemError();
    process.stderr.write(`provenant: ${text}\n`);
    return EXIT_ERROR;
  }
}

/** SIGTERM (Kubernetes) drains first; SIGINT (Ctrl-C) or a second signal stops without the drain. */
function shutdownSignals(): Shutdown {
  const requested = new AbortController();
  const now = new AbortController();
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGINT' || requested.signal.aborted) {
      now.abort(sig);
      // One more signal ends the process the default way, without waiting for requests.
      for (const s of signals) process.off(s, onSignal);
    }
    requested.abort(sig);
  };
  for (const sig of signals) process.on(sig, onSignal);
  return { requested: requested.signal, now: now.signal };
}
