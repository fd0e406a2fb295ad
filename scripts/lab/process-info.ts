import { readdirSync, readFileSync } from 'node:fs'

/** Facts about processes from /proc, for telling a live lab owner from a dead one (or a reused pid). */

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when the pid is gone. */
export function processStartTime (pid: number): string | undefined {
  const fields = statFields(pid)
  // Fields after the command name start at field 3, so field 22 is index 19.
  return fields?.[19]
}

/** True when the pid exists and is not a zombie. */
export function processAlive (pid: number): boolean {
  const fields = statFields(pid)
  return fields !== undefined && fields[0] !== 'Z' && fields[0] !== 'X'
}

/** True when the pid exists and is stopped (by SIGSTOP: state `T`), as a process held before its start is. */
export function processStopped (pid: number): boolean {
  return statFields(pid)?.[0] === 'T'
}

/** The owner of a lab is alive when its pid exists and started at the recorded time (so it was not reused). */
/** USER_HZ: clock ticks per second in /proc/<pid>/stat (100 on Linux everywhere that matters). */
const CLOCK_TICKS_PER_S = 100

/**
 * CPU time (user + system, ms) a process has used so far, or undefined when it is gone. `children`: that of its
 * descendants instead: those it waited for (cutime + cstime) and those still running with all they waited for (a
 * daemon's kept shell and the `wg` runs it reaped).
 */
export function processCpuMs (pid: number | undefined, opts: { children?: boolean } = {}): number | undefined {
  const fields = pid === undefined ? undefined : statFields(pid)
  if (fields === undefined || pid === undefined) return undefined
  // utime and stime are fields 14 and 15, cutime and cstime 16 and 17.
  if (opts.children !== true) return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS_PER_S
  const reaped = Number(fields[13]) + Number(fields[14])
  return (reaped + liveChildren(pid).reduce((sum, child) => sum + treeTicks(child), 0)) * 1000 / CLOCK_TICKS_PER_S
}

/** The children of a process still running (/proc/<pid>/task/<tid>/children of each thread). */
function liveChildren (pid: number): number[] {
  const out: number[] = []
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ').filter((x) => x !== '').map(Number)) } catch {}
    }
  } catch {}
  return out
}

/** Clock ticks of a process, all it reaped, and all its live descendants (0 when it is gone). */
function treeTicks (pid: number): number {
  const f = statFields(pid)
  if (f === undefined) return 0
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0) + liveChildren(pid).reduce((sum, child) => sum + treeTicks(child), 0)
}

/**
 * CPU time (ms) the whole machine has been busy so far, all cores and processes (/proc/stat: user, nice, system,
 * irq, softirq): the difference over a window is the CPU everything used in it.
 */
export function machineBusyMs (): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  const [user, nice, system, , , irq, softirq] = first.trim().split(/\s+/).slice(1).map(Number)
  return [user, nice, system, irq, softirq].reduce((sum: number, x) => sum + (x ?? 0), 0) * 1000 / CLOCK_TICKS_PER_S
}

export function ownerAlive (owner: { pid: number, startTime: string }): boolean {
  return processAlive(owner.pid) && processStartTime(owner.pid) === owner.startTime
}

/** The fields of /proc/<pid>/stat after the command name (field 3 is index 0), or undefined when the pid is gone. */
export function statFields (pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is in parentheses and may contain spaces or parentheses.
  const end = stat.lastIndexOf(')')
  if (end < 0) return undefined
  return stat.slice(end + 2).trim().split(' ')
}
