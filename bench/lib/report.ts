/** The results table: printed to the terminal and written to bench/results/latest.json. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, totalmem, release, hostname } from 'node:os';
import { dirname } from 'node:path';

/** A measured value, or why there is none. */
export type Cell = number | string | null;

export interface Row {
  section: string;
  metric: string;
  unit: string;
  hermes: Cell;
  ceiling?: Cell;
  /** Peer name to value (or the reason it has none). */
  peers?: Record<string, Cell>;
  /** hermes relative to the reference named in `ratioOf` (e.g. 0.82 × ceiling). */
  ratio?: number | null;
  ratioOf?: string;
  target?: string;
  /** null when there is no target or no value to judge. */
  pass?: boolean | null;
  /** Anything a reader needs to interpret the figure. */
  note?: string;
}

export interface Report {
  command: string;
  mode: 'quick' | 'full';
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  startedAt: string;
  finishedAt: string;
  rows: Row[];
  /** Per-section raw data (samples, per-run figures). */
  raw: Record<string, unknown>;
  errors: Array<{ section: string; error: string }>;
}

export function machineInfo(): Record<string, unknown> {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${release()}`,
    arch: process.arch,
    hostname: hostname(),
  };
}

/** Rounds to a sensible number of significant digits for display. */
export function fmt(value: Cell, unit = ''): string {
  if (value === null) return '—';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  let text: string;
  if (abs >= 100_000) text = Math.round(value).toLocaleString('en-US');
  else if (abs >= 100) text = value.toFixed(0);
  else if (abs >= 10) text = value.toFixed(1);
  else if (abs >= 1) text = value.toFixed(2);
  else text = value.toPrecision(2);
  return unit ? `${text} ${unit}` : text;
}

/** A cell as shown in the table: long reasons are cut (the JSON keeps them whole). */
function short(value: Cell, unit: string): string {
  const text = fmt(value, unit);
  return text.length > 28 ? `${text.slice(0, 27)}…` : text;
}

export function renderTable(rows: readonly Row[]): string {
  const peerNames = [...new Set(rows.flatMap((r) => Object.keys(r.peers ?? {})))];
  const header = [
    'section',
    'metric',
    'hermes',
    'ceiling',
    ...peerNames,
    'ratio',
    'target',
    'pass',
  ];
  const body = rows.map((r) => [
    r.section,
    r.metric,
    short(r.hermes, r.unit),
    r.ceiling === undefined ? '' : short(r.ceiling, r.unit),
    ...peerNames.map((p) => (r.peers && p in r.peers ? short(r.peers[p]!, r.unit) : '')),
    r.ratio === undefined || r.ratio === null
      ? ''
      : `${r.ratio.toFixed(2)}×${r.ratioOf ? ` ${r.ratioOf}` : ''}`,
    r.target ?? '',
    r.pass === undefined || r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous = '';
  for (const cells of body) {
    if (cells[0] !== previous && previous !== '') out.push('');
    previous = cells[0]!;
    out.push(line(cells));
  }
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.section} / ${r.metric}: ${r.note}`);
  if (notes.length > 0) out.push('', 'notes:', ...notes);
  return out.join('\n');
}

export async function writeReport(path: string, report: Report): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
  await rename(tmp, path);
}
