/**
 * Admission traffic for the fault suite: `workers` loops, each sending one single-key /v1/verify
 * request after another (a fresh round of `cases` each time), every answer judged against its
 * expected verdict (world.ts `judge`) and recorded with its time and latency. A fault test marks the
 * record, injects its fault, and asserts over what was answered since the mark.
 */
import type { Dispatcher } from 'undici';
import { judge, verify, type Case, type Judgement } from './world.ts';

export interface Answer {
  readonly key: string;
  /** 'transport' when no HTTP answer came (refused, reset, timed out): Gatekeeper's systemError. */
  readonly judgement: Judgement | 'transport';
  readonly why: string;
  readonly ms: number;
  /** Position in the record, for mark()/since(). */
  readonly seq: number;
}

export interface Traffic {
  mark(): number;
  since(mark: number): readonly Answer[];
  /** Resolves once every key of `cases` was answered correctly after `mark` (or rejects at the deadline). */
  allCorrectSince(mark: number, cases: readonly Case[], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface TrafficOptions {
  /** The provider URL now (a restarted provider may get a new one). */
  readonly url: () => string;
  readonly dispatcher: () => Dispatcher;
  readonly cases: readonly Case[];
  readonly workers?: number;
  readonly requestTimeoutMs?: number;
}

const PAUSE_AFTER_TRANSPORT_ERROR_MS = 50;

export function startTraffic(options: TrafficOptions): Traffic {
  const answers: Answer[] = [];
  let running = true;
  const worker = async (offset: number): Promise<void> => {
    for (let i = offset; running; i++) {
      const c = options.cases[i % options.cases.length]!;
      const t0 = performance.now();
      try {
        const answer = await verify(options.url(), options.dispatcher(), [c.key], options.requestTimeoutMs);
        const { judgement, why } = judge(answer, c.expect);
        answers.push({ key: c.key, judgement, why, ms: performance.now() - t0, seq: answers.length });
      } catch (error) {
        const why = (error as Error).message;
        answers.push({
          key: c.key,
          judgement: 'transport',
          why,
          ms: performance.now() - t0,
          seq: answers.length,
        });
        await new Promise((r) => setTimeout(r, PAUSE_AFTER_TRANSPORT_ERROR_MS));
      }
    }
  };
  const loops = Array.from({ length: options.workers ?? 4 }, (_, n) => worker(n * 3));
  const since = (mark: number): readonly Answer[] => answers.slice(mark);
  return {
    mark: () => answers.length,
    since,
    allCorrectSince: async (mark, cases, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const correct = new Set(
          since(mark)
            .filter((a) => a.judgement === 'correct')
            .map((a) => a.key),
        );
        const missing = cases.filter((c) => !correct.has(c.key)).map((c) => c.key);
        if (missing.length === 0) return;
        if (Date.now() > deadline) {
          const last = since(mark).slice(-5);
          throw new Error(
            `not answered correctly within ${timeoutMs} ms: ${missing.join(', ')}; last answers ${JSON.stringify(last)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Counts answers by judgement, for assertion messages and for "the fault had an effect". */
export function tally(answers: readonly Answer[]): Record<Answer['judgement'], number> {
  const counts = { correct: 0, transient: 0, wrong: 0, transport: 0 };
  for (const a of answers) counts[a.judgement]++;
  return counts;
}
