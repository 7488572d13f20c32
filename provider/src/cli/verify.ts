/** `provenant verify IMAGE…`: the server's verification path, from a terminal. */
import { Runtime, type Outcome } from '../service/index.ts';
import { EXIT_ERROR, EXIT_NOT_TRUSTED, EXIT_TRUSTED, type Parsed } from './args.ts';
import { loadConfig, printWarnings } from './load.ts';

export async function verify(args: Parsed, out: NodeJS.WritableStream): Promise<number> {
  if (args.positionals.length === 0) throw new Error('verify expects at least one IMAGE');
  const loaded = loadConfig(args.config);
  printWarnings(loaded);
  const runtime = new Runtime(loaded.config, loaded.source);
  try {
    await runtime.ready();
    const images = args.positionals;
    if (args.explain) return await explain(runtime, images, args.json, out);
    const outcomes = await runtime.verifier.verifyAll(images);
    out.write(
      args.json
        ? `${JSON.stringify(
            images.map((image, i) => toJson(image, outcomes[i] as Outcome)),
            null,
            2,
          )}\n`
        : outcomes.map((o, i) => toText(images[i] as string, o)).join(''),
    );
    if (outcomes.some((o) => !o.ok && o.error.transient)) return EXIT_ERROR;
    return outcomes.every((o) => o.ok) ? EXIT_TRUSTED : EXIT_NOT_TRUSTED;
  } finally {
    await runtime.close();
  }
}

/** verify --explain: each image verified on its own, every step printed (README "verify --explain"). */
async function explain(
  runtime: Runtime,
  images: readonly string[],
  json: boolean,
  out: NodeJS.WritableStream,
): Promise<number> {
  const explained = [];
  for (const image of images) explained.push({ image, ...(await runtime.verifier.explain(image)) });
  if (json) {
    out.write(
      `${JSON.stringify(
        explained.map((e) => ({ ...toJson(e.image, e.outcome), steps: e.steps })),
        null,
        2,
      )}\n`,
    );
  } else {
    for (const e of explained) {
      out.write(`${e.image}\n${e.steps.map((s) => `  ${s.kind.padEnd(9)} ${s.text}\n`).join('')}`);
    }
  }
  const outcomes = explained.map((e) => e.outcome);
  if (outcomes.some((o) => !o.ok && o.error.transient)) return EXIT_ERROR;
  return outcomes.every((o) => o.ok) ? EXIT_TRUSTED : EXIT_NOT_TRUSTED;
}

function toJson(image: string, o: Outcome): object {
  if (o.ok) {
    const { pinned, ...verdict } = o.verdict;
    return { key: image, trusted: true, pinned, ...verdict };
  }
  return {
    key: image,
    trusted: false,
    code: o.error.code,
    error: o.error.message,
    transient: o.error.transient,
  };
}

function toText(image: string, o: Outcome): string {
  if (o.ok) {
    const by = o.verdict.signers.length > 0 ? ` signed by ${o.verdict.signers.join(', ')}` : '';
    const notes = (o.verdict.notes ?? []).map((n) => `  note: ${n}\n`).join('');
    return `trusted  ${image}\n  -> ${o.verdict.pinned}\n  validator ${o.verdict.validator}${by}, rule "${o.verdict.rule}"\n${notes}`;
  }
  return `${o.error.transient ? 'error    ' : 'denied   '}${image}\n  ${o.error.toItemError()}\n`;
}
