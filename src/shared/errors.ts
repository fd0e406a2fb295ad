/** Exit code for bad command-line usage (sysexits EX_USAGE): systemd units can refuse to restart-loop on it. */
export const EXIT_USAGE = 64
/** Exit code for a missing or unusable dependency at start-up (sysexits EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69
/** Exit code for input data that is well-formed but unusable (sysexits EX_DATAERR): a taken address, a broken config. */
export const EXIT_DATAERR = 65
/** Exit code for a file or interface that cannot be created, e.g. because it already exists (sysexits EX_CANTCREAT). */
export const EXIT_CANTCREAT = 73
/** Exit code for permission problems (sysexits EX_NOPERM). */
export const EXIT_NOPERM = 77

/** Base class: an error whose message is fit to show a user on one line, with an exit code for the CLI. */
export class WgnatError extends Error {
  readonly exitCode: number
  constructor (message: string, exitCode = 1) {
    super(message)
    this.name = new.target.name
    this.exitCode = exitCode
  }
}

/** A command-line option or environment variable has a bad value. */
export class UsageError extends WgnatError {
  constructor (message: string) { super(message, EXIT_USAGE) }
}

/** Text from outside (wg output, a registry response, a datagram) did not parse. */
export class ParseError extends WgnatError {}

/** Running `wg` failed (not installed, not permitted, interface missing). */
export class WgError extends WgnatError {}

/**
 * Quote a value from outside for an error message: bounded, on one line, and with no control character (a registry
 * or a file could otherwise write terminal escapes into a log read on a terminal): each is a blank.
 */
export function quote (value: unknown): string {
  let text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  if (text.length > 80) text = text.slice(0, 77) + '...'
  return `'${text}'`
}

/** The one-line message of any thrown value. */
export function messageOf (err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name
  return String(err)
}
