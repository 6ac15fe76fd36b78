'use strict';

// Small statistics, number formatting and machine-load accounting shared by the benchmarks
// (index.js, cluster.js, trace.js, collection.js, memory.js). NaN marks "not measured" and is
// left out.

const fs = require('fs');

/** The q-quantile of the measured numbers (linear interpolation); NaN when there are none. */
function quantile(xs, q) {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

const median = (xs) => quantile(xs, 0.5);

/** The largest measured number; NaN when there are none. */
function max(xs) {
  const measured = xs.filter((x) => !Number.isNaN(x));
  return measured.length === 0 ? NaN : Math.max(...measured);
}

const sum = (xs) => xs.reduce((a, x) => a + x, 0);

/** Three significant digits or so for a table cell ('-' when not a number), or `digits` decimals. */
function fmt(x, digits) {
  if (!Number.isFinite(x)) return '-';
  if (digits !== undefined) return x.toFixed(digits);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

// CPU seconds used by the whole machine so far (Linux /proc/stat; null elsewhere).
function machineBusySeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

// CPU seconds used so far by this process and by every descendant that has ended and been waited
// for (Linux /proc/self/stat: utime + stime + cutime + cstime; null elsewhere).
function familySeconds() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    // Fields from the third on (the command, field 2, may hold spaces): utime is field 14.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (f[11] + f[12] + f[13] + f[14]) / 100;
  } catch {
    return null;
  }
}

/**
 * Starts watching the machine: the returned function tells how long it has been and how much CPU
 * processes other than this one and its (ended) descendants used meanwhile. On a 2-core machine
 * they skew every number: a part run while others used more than 10% of a core is flagged.
 */
function watchOthers() {
  const t0 = Date.now();
  const busy0 = machineBusySeconds();
  const family0 = familySeconds();
  return () => {
    const seconds = (Date.now() - t0) / 1000;
    const busy = machineBusySeconds();
    const family = familySeconds();
    const known = busy0 !== null && family0 !== null && busy !== null && family !== null;
    const others = known ? Math.max(0, busy - busy0 - (family - family0)) : null;
    const share = others === null ? null : others / seconds;
    return { seconds, othersCpuSeconds: others, othersShareOfACore: share, quiet: share === null ? null : share <= 0.1 };
  };
}

/** One line about watchOthers()'s result. */
function othersLine(w) {
  if (w.othersCpuSeconds === null) return `${w.seconds.toFixed(0)} s (the other processes' CPU use is unknown on this system)`;
  return `${w.seconds.toFixed(0)} s; other processes used ${w.othersCpuSeconds.toFixed(1)} CPU-s meanwhile (${(100 * w.othersShareOfACore).toFixed(0)}% of one core)` +
    `${w.quiet ? '' : ': the machine was not quiet, numbers are suspect'}`;
}

/**
 * The CPU time thread `tid` of this process has run, in ms, from the kernel's scheduler
 * statistics (nanoseconds; Linux; NaN elsewhere): unlike event-loop utilization, it does not
 * count the time the thread waits for a CPU while other threads use both cores.
 */
function threadCpuMs(tid) {
  try {
    return Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** The id of this process's thread named `name` (as the kernel shows it), or null. */
function threadNamed(name) {
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name) return Number(tid);
    }
  } catch {
    // not Linux
  }
  return null;
}

/** Every thread of process `pid`: [{ tid, name, ms }] (CPU ms as threadCpuMs); null where not Linux. */
function threadsCpuMs(pid) {
  let tids;
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const threads = [];
  for (const tid of tids) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ms = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      threads.push({ tid: Number(tid), name, ms });
    } catch {
      // the thread ended since the listing
    }
  }
  return threads;
}

module.exports = { quantile, median, max, sum, fmt, machineBusySeconds, watchOthers, othersLine, threadCpuMs, threadNamed, threadsCpuMs };
