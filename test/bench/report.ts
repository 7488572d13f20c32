/**
 * The benchmark's figures as one JSON document (bench/results/*.json) and as a Markdown table (what the
 * README's performance section shows). Every figure is given for each system that took part, with
 * Provenant's value as a ratio to Ratify's and to the floor's.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { SystemName } from './systems.ts';

export interface Figure {
  readonly id: string;
  readonly label: string;
  readonly unit: 'ms' | 'req/s' | 'MB' | 'requests' | '%';
  /** Whether a smaller value is better (latency, memory) or a larger one (throughput). */
  readonly better: 'lower' | 'higher';
  readonly values: Partial<Record<SystemName, number>>;
  /** provenant / ratify and provenant / floor, when both values exist. */
  readonly ratios: { readonly vsRatify?: number; readonly vsFloor?: number };
}

export interface Results {
  readonly schema: 'provenant-bench/v1';
  readonly date: string;
  readonly mode: 'full' | 'quick';
  readonly command: string;
  readonly systems: readonly SystemName[];
  readonly machine: Machine;
  readonly setup: Record<string, unknown>;
  readonly figures: readonly Figure[];
  /** Registry requests of one image by method, kind and status, per system and validator kind. */
  readonly registryRequests: Record<string, Record<string, number>>;
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGB: number;
  readonly os: string;
  readonly node: string;
  readonly commit: string;
  /** 1-minute load average when the run ended: other work on the machine skews every figure. */
  readonly loadAverage: number;
}

export function figure(
  id: string,
  label: string,
  unit: Figure['unit'],
  better: Figure['better'],
  values: Partial<Record<SystemName, number | undefined>>,
): Figure {
  const clean = Object.fromEntries(
    Object.entries(values).filter((e): e is [string, number] => e[1] !== undefined && Number.isFinite(e[1])),
  ) as Partial<Record<SystemName, number>>;
  const ratio = (other: number | undefined): number | undefined =>
    clean.provenant === undefined || other === undefined || other === 0 ? undefined : clean.provenant / other;
  const vsRatify = ratio(clean.ratify);
  const vsFloor = ratio(clean.floor);
  return {
    id,
    label,
    unit,
    better,
    values: clean,
    ratios: {
      ...(vsRatify === undefined ? {} : { vsRatify }),
      ...(vsFloor === undefined ? {} : { vsFloor }),
    },
  };
}

export function machine(): Machine {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    commit,
    loadAverage: Number((os.loadavg()[0] ?? 0).toFixed(2)),
  };
}

function format(value: number | undefined, unit: Figure['unit']): string {
  if (value === undefined) return '–';
  const digits =
    unit === 'ms' ? (value < 10 ? 2 : value < 100 ? 1 : 0) : unit === 'requests' || unit === '%' ? 1 : 0;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(2)}×`;
}

/** A Markdown table: figure, unit, each system, Provenant / Ratify, Provenant / floor. */
export function table(results: Results): string {
  const systems = results.systems;
  const head = ['figure', 'unit', ...systems, 'Provenant / Ratify', 'Provenant / floor'];
  const rows = results.figures.map((f) => [
    f.label,
    `${f.unit} (${f.better} is better)`,
    ...systems.map((s) => format(f.values[s], f.unit)),
    ratio(f.ratios.vsRatify),
    ratio(f.ratios.vsFloor),
  ]);
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
