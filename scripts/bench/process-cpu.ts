// CPU time of a process from /proc (Linux): utime + stime of every thread (/proc/<pid>/stat, in
// clock ticks) and the scheduler's nanosecond count (schedstat). Steadier than wall time on a
// shared machine: waiting for a core costs wall time, not CPU time.
import { readdirSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

let ticksPerSecond: number | undefined;

function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  utime: number;
  stime: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm is in parentheses and may contain spaces; the fields after the last ")" are fixed.
  const close = text.lastIndexOf(")");
  const comm = text.slice(text.indexOf("(") + 1, close);
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { pid, comm, ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

/** Processes named `comm` that descend from `ancestor` (default: this process). */
export function findDescendants(comm: string, ancestor = process.pid): number[] {
  const all = new Map<number, ProcStat>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) all.set(stat.pid, stat);
  }
  const descends = (pid: number): boolean => {
    for (let p = all.get(pid)?.ppid, hops = 0; p !== undefined && p > 0 && hops < 64; p = all.get(p)?.ppid, hops++) {
      if (p === ancestor) return true;
    }
    return false;
  };
  return [...all.values()].filter((s) => s.comm === comm && descends(s.pid)).map((s) => s.pid);
}

/** CPU time (user + system, all threads) the process has used so far, in ms. */
export function processCpuMs(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`no process ${pid}`);
  return ((stat.utime + stat.stime) * 1000) / clockTicksPerSecond();
}

/**
 * CPU time of every thread of the process, in ms with nanosecond resolution (the first field of
 * /proc/<pid>/task/<tid>/schedstat). The same quantity as processCpuMs, which only counts in clock
 * ticks (10 ms): too coarse for phases that take a few tens of ms of CPU.
 */
export function processCpuMsFine(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return ns / 1e6;
}

/** The resolution of processCpuMs, in ms. */
export function cpuTickMs(): number {
  return 1000 / clockTicksPerSecond();
}
