/**
 * The soak of test/soak/soak.ts. In the test command it runs SOAK_DURATION seconds (default 120, plus
 * about 20 s of setup) at SOAK_RATE requests per second (default 20); `npm run soak` runs this file
 * for 30 minutes at 50 requests per second. Figures go to stdout and to SOAK_OUTPUT (a JSON file)
 * when set.
 */
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SOAK, runSoak } from '../../soak/soak.ts';

const number = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};
const DURATION_S = number('SOAK_DURATION', 120);
const RATE = number('SOAK_RATE', 20);
/** A short soak still gets a warm-up and several windows. */
const WINDOW_S = Math.min(DEFAULT_SOAK.windowS, Math.round(DURATION_S / 5));
const SETUP_AND_TEARDOWN_MS = 90_000;

describe('a soak under a mixed load', () => {
  it(
    `answers ${RATE} requests/s for ${DURATION_S} s each with its expected verdict, no 5xx, RSS and p99 stable`,
    async () => {
      const result = await runSoak({
        ...DEFAULT_SOAK,
        durationS: DURATION_S,
        rate: RATE,
        warmupS: WINDOW_S,
        windowS: WINDOW_S,
        log: (line) => console.log(line),
      });
      console.log(JSON.stringify({ ...result, windows: undefined }, null, 2));
      console.table(result.windows);
      const output = process.env['SOAK_OUTPUT'];
      if (output !== undefined) await writeFile(output, `${JSON.stringify(result, null, 2)}\n`);
      expect(result.failures).toEqual([]);
      expect(result.judgements.wrong).toBe(0);
      expect(result.transportErrors).toBe(0);
      // Every kind of key was asked, and the load was sustained near the stated rate.
      expect(Object.keys(result.byKind)).toHaveLength(7);
      expect(result.achievedRate).toBeGreaterThan(RATE * 0.8);
    },
    DURATION_S * 1000 + SETUP_AND_TEARDOWN_MS,
  );
});
