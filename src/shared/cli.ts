import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { createRequire } from 'node:module'
import { WgnatError, EXIT_USAGE, messageOf, quote } from './errors.js'
import { parseGoDuration } from './duration.js'
import type { Logger } from './log.js'
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log-options.js'

/** Options both daemons take. */
export interface CommonOptions {
  logLevel: LogLevel
  logFormat: LogFormat
}

/** `--log-level` and `--log-format`, each also read from its WGNAT_* variable. */
export function addCommonOptions (cmd: Command): Command {
  return cmd
    .addOption(new Option('--log-level <level>', 'log verbosity').choices(LOG_LEVELS).default('info').env('WGNAT_LOG_LEVEL'))
    .addOption(new Option('--log-format <format>', 'log lines as text or JSON (stderr)').choices(LOG_FORMATS).default('text').env('WGNAT_LOG_FORMAT'))
}

/** The longest wait Node's timers take (2^31 - 1 ms, about 24.8 days): a longer one fires at once, with a warning. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** commander parser for a Go duration (`300ms`, `1m`, `1h30m`); `min` in milliseconds, at most MAX_TIMER_MS. */
export function durationArg (min = 1) {
  return (value: string): number => {
    let ms: number
    try { ms = parseGoDuration(value) } catch (err) { throw new InvalidArgumentError(messageOf(err)) }
    if (ms < min) throw new InvalidArgumentError(`duration ${quote(value)} is below the minimum of ${min}ms`)
    if (ms > MAX_TIMER_MS) throw new InvalidArgumentError(`duration ${quote(value)} is over the maximum of 596h (the longest a timer waits)`)
    return ms
  }
}

/** Longest path a Unix socket takes (sun_path: 108 bytes with its NUL). */
const SOCKET_PATH_MAX_BYTES = 107

/** commander parser for a Unix socket's path: not empty, at most 107 bytes. */
export function socketPathArg (value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('the socket path is empty')
  if (Buffer.byteLength(value) > SOCKET_PATH_MAX_BYTES) throw new InvalidArgumentError(`${quote(value)} is longer than a Unix socket path may be (${SOCKET_PATH_MAX_BYTES} bytes)`)
  return value
}

/** commander parser for an integer in [min, max]. */
export function intArg (min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`${quote(value)} is not a whole number from ${min} to ${max}`)
    }
    return Number(value)
  }
}

/** A daemon that runs until stopped. */
export interface Daemon {
  stop (): Promise<void>
  /** Resolves when the daemon ends by itself (a fatal error after start). */
  readonly done?: Promise<void>
}

export interface RunIo {
  /** Where a usage or start-up error line goes. @default process.stderr */
  stderr?: (line: string) => void
  stdout?: (text: string) => void
  /** Resolves when the process is asked to stop. @default SIGINT or SIGTERM */
  stopSignal?: Promise<string>
}

/**
 * What a CLI does before its own parsing with a first argument that is not an option: `--version`, or a word that is
 * none of its `commands` (a mistyped one: `iniy`, `stauts`), which commander would call "too many arguments" or a
 * missing `-i`. Returns an exit code when that is all, undefined to go on.
 */
export function preflight (argv: string[], cli: string, commands: string[], io: RunIo = {}): number | undefined {
  const first = argv[2]
  if (first === undefined) return undefined
  const stdout = io.stdout ?? ((t: string) => process.stdout.write(t))
  const stderr = io.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
  if (first === '--version' || first === '-V') {
    // The package's manifest: two folders up from src/shared/ and from dist/bin/ (the bundle) alike.
    const { version } = createRequire(import.meta.url)('../../package.json') as { version?: string }
    stdout(`${cli} ${version ?? 'unknown'}\n`)
    return 0
  }
  if (first.startsWith('-') || commands.includes(first)) return undefined
  stderr(`${cli}: unknown command ${quote(first)} (commands: ${commands.join(', ')}; \`${cli} --help\` for the daemon's options)`)
  return EXIT_USAGE
}

/** Parse argv with `program` and run a one-shot command that prints to stdout. Same error rules as runDaemon. */
export async function runCommand (
  program: Command,
  argv: string[],
  action: (opts: Record<string, unknown>, out: (text: string) => void) => Promise<void>,
  io: RunIo = {}
): Promise<number> {
  const stderr = io.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
  const stdout = io.stdout ?? ((t: string) => process.stdout.write(t))
  const parsed = await parse(program, argv, stderr, stdout)
  if (typeof parsed === 'number') return parsed
  try {
    await action(parsed, stdout)
    return 0
  } catch (err) {
    stderr(`${program.name()}: ${messageOf(err)}`)
    return err instanceof WgnatError ? err.exitCode : 1
  }
}

/** Columns of `--help` text, whatever the terminal's width (commander's own default where it is not a terminal). */
export const HELP_WIDTH = 80

/** Parse argv; a number is the exit code to return at once (help shown, or a usage error already printed). */
async function parse (program: Command, argv: string[], stderr: (line: string) => void, stdout: (t: string) => void): Promise<Record<string, unknown> | number> {
  program.exitOverride()
  // Usage errors on one line: commander puts a hint on a second line, and quotes a bad value as given (newlines too).
  // Help wraps at HELP_WIDTH on a terminal of any width too: the same text everywhere, so the entry can print the one
  // the build recorded for `--help` alone (scripts/bundle.mjs) without loading the CLI.
  program.configureOutput({ writeErr: (text) => stderr(text.trimEnd().replace(/\s*[\r\n]+\s*/g, ' ')), writeOut: stdout, getOutHelpWidth: () => HELP_WIDTH })
  const restoreEnv = unsetEmptyEnv(program, process.env)
  let envError: string | undefined
  try {
    await program.parseAsync(argv)
    envError = applyOnOffEnv(program, process.env)
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : EXIT_USAGE
    }
    stderr(`${program.name()}: ${messageOf(err)}`)
    return err instanceof WgnatError ? err.exitCode : 1
  } finally {
    restoreEnv()
  }
  if (envError !== undefined) {
    stderr(`${program.name()}: ${envError}`)
    return EXIT_USAGE
  }
  return program.opts()
}

const ON = ['1', 'true', 'yes', 'on']
const OFF = ['0', 'false', 'no', 'off']

/**
 * An option's variable set to nothing (`WGNAT_EXPOSE=` in an env file) counts as not set: the option keeps its default,
 * as it did before it was written there. Commander would take the empty value (a usage error for most options, "on"
 * for an on/off one). The variables are put back by the function returned, once parsing is done.
 */
export function unsetEmptyEnv (program: Command, env: NodeJS.ProcessEnv): () => void {
  const emptied: Array<[string, string]> = []
  for (const option of program.options) {
    const name = option.envVar
    const value = name === undefined ? undefined : env[name]
    if (name !== undefined && value !== undefined && value.trim() === '') {
      emptied.push([name, value])
      delete env[name]
    }
  }
  return () => { for (const [name, value] of emptied) env[name] = value }
}

/**
 * On/off options set from the environment take the variable's value: commander turns such an option on whenever its
 * variable is set, so `WGNAT_RELAY=false` in an env file would turn relaying on. 1/true/yes/on and 0/false/no/off
 * (any case) are understood; for a `--no-x` option "on" means the `no`. Anything else is refused, naming the variable
 * and quoting its value. Returns that error, or undefined. (An empty variable never gets here: unsetEmptyEnv.)
 */
export function applyOnOffEnv (program: Command, env: NodeJS.ProcessEnv): string | undefined {
  for (const option of program.options) {
    if (option.required || option.optional || option.envVar === undefined) continue
    const key = option.attributeName()
    if (program.getOptionValueSource(key) !== 'env') continue
    const raw = env[option.envVar] ?? ''
    const word = raw.trim().toLowerCase()
    const on = ON.includes(word)
    if (!on && !OFF.includes(word)) return `${option.envVar}=${quote(raw)}: not on or off (1, true, yes, on / 0, false, no, off)`
    program.setOptionValueWithSource(key, option.negate ? !on : on, 'env')
  }
  return undefined
}

/**
 * Parse argv with `program`, then run the daemon until a stop signal. Returns the exit code; never calls
 * process.exit and never prints a stack trace: usage errors exit 64, start-up errors their WgnatError code.
 */
export async function runDaemon (
  program: Command,
  argv: string[],
  start: (opts: Record<string, unknown>, logger: Logger) => Promise<Daemon>,
  io: RunIo = {}
): Promise<number> {
  const stderr = io.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
  const opts = await parse(program, argv, stderr, io.stdout ?? ((t: string) => process.stdout.write(t)))
  if (typeof opts === 'number') return opts
  // Loaded only for a daemon that starts: `--help` and usage errors need no logger.
  const { createLogger } = await import('./log.js')
  const logger = await createLogger({ name: program.name(), level: opts.logLevel as LogLevel, format: opts.logFormat as LogFormat })
  // Listen for stop signals before starting: a SIGTERM during start-up waits for start to finish and is then obeyed,
  // rather than killing the process halfway (say, with --relay's forwarding set up and never undone). The handlers
  // stay installed, so a second signal while stopping cannot cut the clean-up short.
  const signal = io.stopSignal ?? new Promise<string>((resolve) => {
    process.on('SIGINT', () => resolve('SIGINT'))
    process.on('SIGTERM', () => resolve('SIGTERM'))
  })
  let daemon: Daemon
  try {
    daemon = await start(opts, logger)
  } catch (err) {
    logger.error(messageOf(err))
    return err instanceof WgnatError ? err.exitCode : 1
  }
  const why = await Promise.race([signal, daemon.done?.then(() => 'done') ?? new Promise<string>(() => {})])
  logger.info(`stopping (${why})`)
  await daemon.stop()
  return 0
}

/**
 * A reader that closes our stdout early (`wgnat-client --help | head -1`) ends the command quietly, as it does for
 * other tools, instead of an unhandled EPIPE and its stack trace; any other failure to write it is one line, exit 74.
 */
export function handleStdoutErrors (name: string, stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
    process.stderr.write(`${name}: writing to stdout failed: ${err.message}\n`)
    process.exit(74)
  })
}
