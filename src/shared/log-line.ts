/**
 * One pino JSON record as one line of text, the way `--log-format text` shows it when stderr is not a terminal:
 * `[HH:MM:ss.mmm] LEVEL: message {"extra":"fields"}` (pino-pretty's single-line layout, which a terminal gets).
 * Pure; the record is untrusted only in the sense that any field may be missing.
 */

/** pino's level numbers. */
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** Fields of a record that are part of the layout, not extras. */
const LAYOUT_KEYS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname', 'v'])

export function formatLogLine (record: Record<string, unknown>): string {
  const time = typeof record.time === 'number' ? clockOf(new Date(record.time)) : '--:--:--.---'
  const level = typeof record.level === 'number' ? LEVEL_NAMES[record.level] ?? `L${record.level}` : 'INFO'
  const msg = typeof record.msg === 'string' ? record.msg : ''
  const extra: Record<string, unknown> = {}
  let any = false
  for (const [k, v] of Object.entries(record)) {
    if (LAYOUT_KEYS.has(k)) continue
    // An error: its message, never its stack (one line per record).
    extra[k] = k === 'err' && typeof v === 'object' && v !== null && 'message' in v ? String((v as { message: unknown }).message) : v
    any = true
  }
  return `[${time}] ${level}: ${msg}${any ? ` ${JSON.stringify(extra)}` : ''}`.replace(/[\r\n]+/g, ' ')
}

/** Local wall-clock time as HH:MM:ss.mmm. */
function clockOf (d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}
