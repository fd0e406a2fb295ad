import { isatty } from 'node:tty'
import { pino, destination, type Logger } from 'pino'
import { formatLogLine } from './log-line.js'

import type { LogFormat, LogLevel } from './log-options.js'

export type { Logger }
export { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log-options.js'

/**
 * The daemons' logger: always stderr (stdout is for command output), synchronous so nothing is lost on exit.
 * Keys are never logged: callers name peers by `shortKey()`. `text` goes through pino-pretty on a terminal; to a
 * file or a pipe (a service manager's journal), through formatLogLine: the same layout without loading
 * pino-pretty, a tenth of a client's start-up.
 */
export async function createLogger (opts: { name: string, level: LogLevel, format: LogFormat, isTerminal?: boolean }): Promise<Logger> {
  const base = { name: opts.name, level: opts.level, base: undefined }
  if (opts.format === 'json') return pino(base, destination({ fd: 2, sync: true }))
  // isatty(2), not process.stderr.isTTY: that would open stderr as a non-blocking stream for nothing.
  if (opts.isTerminal ?? isatty(2)) {
    const { default: pretty } = await import('pino-pretty')
    return pino(base, pretty({ destination: 2, sync: true, colorize: false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'name', singleLine: true }))
  }
  // sonic-boom (pino's destination) writes synchronously and waits out a full pipe (EAGAIN) instead of throwing.
  const stderr = destination({ fd: 2, sync: true })
  return pino(base, { write: (json: string) => { stderr.write(textLine(json)) } })
}

function textLine (json: string): string {
  try {
    return formatLogLine(JSON.parse(json) as Record<string, unknown>) + '\n'
  } catch {
    return json
  }
}

/** A logger that drops everything, for tests. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
