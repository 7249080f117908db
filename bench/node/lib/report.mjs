// Figures and how they are printed: the same names and definitions as
// bench/harness/report.py (nearest-rank percentiles, CPU per 1,000 events, the
// saturation verdict), plus the per-event CPU in microseconds.

import { cpus } from 'node:os';
import { round } from './procstat.mjs';

/** Above this share of one core, a process counts as saturated. */
export const SATURATED = 0.85;

/** The nearest-rank q-quantile (0 < q <= 1) of an ascending, non-empty array. */
export function percentile(ordered, q) {
  return ordered[Math.min(ordered.length - 1, Math.max(0, Math.ceil(q * ordered.length) - 1))];
}

/** p50, p95, p99 and max of latencies in seconds (a Float64Array or array), in ms. */
export function latencyMs(seconds) {
  const ordered = Float64Array.from(seconds).sort();
  const keys = { p50: 0.5, p95: 0.95, p99: 0.99, max: 1 };
  const out = {};
  for (const [name, q] of Object.entries(keys)) {
    out[name] = ordered.length ? round(percentile(ordered, q) * 1000, 2) : null;
  }
  return out;
}

/** Counts by key, added together. */
export function sumCounts(...dicts) {
  const total = {};
  for (const d of dicts) for (const [k, v] of Object.entries(d)) total[k] = (total[k] ?? 0) + v;
  return total;
}

function whoSaturated(cores, machine, others) {
  const saturated = Object.entries(cores)
    .filter(([, share]) => share >= SATURATED)
    .map(([name]) => name);
  if (saturated.length) return saturated.join(' and ');
  if (machine >= SATURATED * cpus().length) return `the machine (other processes took ${others.toFixed(2)} cores)`;
  return 'neither (waiting, not computing)';
}

/**
 * Who spent what on `count` events (`unit`: "delivered", "deliveries", and `one` for a
 * single event: "message", "delivery") over the
 * procstat span `s`: the server's, the database's and this load generator's CPU, per
 * event and as cores busy, and which of them saturated. Server and database figures
 * say "(no --server-pid)" / "(no --db-pid)" when not measured.
 */
export function costFigures(s, count, [unit, one], { serverPid: serverPids, dbPid: dbPids }) {
  const perK = (cpu) => (count ? round((cpu * 1000) / count, 4) : null);
  const perUs = (cpu) => (count ? round((cpu * 1e6) / count, 1) : null);
  const serverCores = s.server / s.wall;
  const dbCores = s.db / s.wall;
  const ownCores = s.own / s.wall;
  const others = s.machine - serverCores - dbCores - ownCores;
  const noServer = '(no --server-pid)';
  const noDb = '(no --db-pid)';
  const has = serverPids.length > 0;
  const hasDb = dbPids.length > 0;
  return {
    'server cpu s': has ? round(s.server, 3) : noServer,
    [`server cpu s per 1k ${unit}`]: has ? perK(s.server) : noServer,
    [`server cpu us per ${one}`]: has ? perUs(s.server) : noServer,
    'server cores busy': has ? round(serverCores, 2) : noServer,
    'server cpu s by pid': has ? s.byPid : noServer,
    [`database cpu us per ${one}`]: hasDb ? perUs(s.db) : noDb,
    'database cores busy': hasDb ? round(dbCores, 2) : noDb,
    'server rss kb': has ? s.rssKb : noServer,
    'server rss growth kb': has ? s.rssGrowthKb : noServer,
    'loadgen cpu s': round(s.own, 3),
    'loadgen cpu s of it in the kernel': round(s.ownSystem, 3),
    [`loadgen cpu us per ${one}`]: perUs(s.own),
    'loadgen cores busy': round(ownCores, 2),
    'machine cores busy (all processes)': round(s.machine, 2),
    "other processes' cores busy": round(others, 2),
    'span wall s': round(s.wall, 3),
    saturated: whoSaturated(
      { server: has ? serverCores : 0, database: hasDb ? dbCores : 0, loadgen: ownCores },
      s.machine,
      others,
    ),
  };
}

function shown(value) {
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'object') {
    const parts = Object.entries(value).map(([k, v]) => `${k}=${v}`);
    return parts.length ? parts.join(', ') : 'none';
  }
  if (typeof value === 'number' && !Number.isInteger(value)) {
    return Math.abs(value) < 1000 ? String(Number(value.toPrecision(4))) : Math.round(value).toLocaleString('en');
  }
  return String(value);
}

/**
 * Print `figures` as aligned `name  value` lines under `title`. With `asJson`, the table
 * goes to stderr and stdout gets exactly one JSON object (`{"bench": title, ...}`).
 */
export function emit(title, figures, { asJson }) {
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  const lines = [title, ...Object.entries(figures).map(([k, v]) => `  ${k.padEnd(width)}  ${shown(v)}`)];
  (asJson ? process.stderr : process.stdout).write(lines.join('\n') + '\n');
  if (asJson) process.stdout.write(JSON.stringify({ bench: title, ...figures }) + '\n');
}
