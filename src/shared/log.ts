import { pino, destination, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = typeof LOG_FORMATS[number]

/**
 * The daemons' logger: always stderr (stdout is for command output), synchronous so nothing is lost on exit.
 * Keys are never logged: callers name peers by `shortKey()`.
 */
export function createLogger (opts: { name: string, level: LogLevel, format: LogFormat }): Logger {
  const base = { name: opts.name, level: opts.level, base: undefined }
  if (opts.format === 'json') return pino(base, destination({ fd: 2, sync: true }))
  return pino(base, pretty({
    destination: 2,
    sync: true,
    colorize: false,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'name',
    singleLine: true
  }))
}

/** A logger that drops everything, for tests. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
