/**
 * The environment the benchmarks start wgnat's daemons in: the one they have as installed services, not the
 * benchmark's shell's.
 *
 * systemd starts a unit with the service manager's environment, not a login shell's, and the shipped units unset
 * `NODE_EXTRA_CA_CERTS` (systemd/wgnat-*@.service). A shell may set it: this machine's shells name the system's CA
 * bundle in it. Node reads and parses that bundle at every start, before any JavaScript runs (`perf stat -r 20`:
 * `node -e 0` 128 ms of CPU with it, 49 ms without), and wgnat makes no TLS connection. Started with it, a client
 * measures this machine's shell as much as wgnat: the benchmarks leave it out unless told `--shell-env`.
 */

/** Variables of a shell that an installed wgnat service does not have. */
export const SHELL_ONLY_VARS = ['NODE_EXTRA_CA_CERTS'] as const

/** A shell command prefix that removes SHELL_ONLY_VARS, or nothing with `shellEnv` (the benchmark's `--shell-env`). */
export function unsetShellOnly (shellEnv: boolean): string {
  return shellEnv ? '' : `unset ${SHELL_ONLY_VARS.join(' ')}; `
}

/** `env` without SHELL_ONLY_VARS, or `env` itself with `shellEnv`. */
export function serviceEnv (env: NodeJS.ProcessEnv, shellEnv: boolean): NodeJS.ProcessEnv {
  if (shellEnv) return env
  const out = { ...env }
  for (const name of SHELL_ONLY_VARS) delete out[name]
  return out
}

/** One line for a benchmark's output: which environment its daemons had. */
export function envNote (shellEnv: boolean): string {
  return shellEnv
    ? `daemons started with this shell's environment (${SHELL_ONLY_VARS.map((v) => `${v}${process.env[v] === undefined ? ' unset' : ' set'}`).join(', ')})`
    : `daemons started without ${SHELL_ONLY_VARS.join(', ')}, as the installed units run them (--shell-env to keep it)`
}
