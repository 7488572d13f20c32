/** The `provenant` command. Returns the exit code; never throws. */
import { toProvenantError } from '../types/errors.ts';
import { USAGE, parseCommandLine } from './args.ts';
import { policy } from './policy-test.ts';
import { serve } from './serve.ts';
import { EXIT_ERROR, verify } from './verify.ts';

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseCommandLine(argv);
    if (args.help || args.command === undefined) {
      process.stdout.write(`${USAGE}\n`);
      return args.help ? 0 : EXIT_ERROR;
    }
    switch (args.command) {
      case 'serve':
        return await serve(args, shutdownSignal());
      case 'verify':
        return await verify(args, process.stdout);
      case 'policy':
        return await policy(args, process.stdout);
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

function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
  return controller.signal;
}
