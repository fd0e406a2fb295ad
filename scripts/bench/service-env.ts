/**
 * The environment the benchmarks start wgnat's daemons in: the one they have as installed services, not the
 * benchmark's shell's.
 *
 * systemd starts a unit with the service manager's environment, not a login shell's, and the shipped units also unset
 * `NODE_EXTRA_CA_CERTS` (systemd/wgnat-*@.service). A shell may set it: this machine's shells name the system's CA
 * bundle in it. Node reads and parses that bundle at every start, before any JavaScript runs (`perf stat -r 20`:
 * `node -e 0` 128 ms of CPU with it, 49 ms without), and wgnat makes no TLS connection. Started with it, a daemon
 * measures this machine's shell as much as wgnat: the benchmarks remove it from their own environment, which
 * everything they start inherits (the lab, the hub, the clients), unless told `--shell-env`.
 */

/** Variables of a shell that an installed wgnat service does not have. */
export const SHELL_ONLY_VARS = ['NODE_EXTRA_CA_CERTS'] as const

/** Remove SHELL_ONLY_VARS from this process's environment, so that nothing it starts has them (not with `shellEnv`). */
export function useServiceEnv (shellEnv: boolean): void {
  if (shellEnv) return
  for (const name of SHELL_ONLY_VARS) Reflect.deleteProperty(process.env, name)
}

/** One line for a benchmark's output: which environment its daemons had (call before useServiceEnv). */
export function envNote (shellEnv: boolean, shell: NodeJS.ProcessEnv = process.env): string {
  const vars = SHELL_ONLY_VARS.map((v) => `${v} ${shell[v] === undefined ? 'unset' : 'set'}`).join(', ')
  return shellEnv
    ? `daemons started with this shell's environment (${vars})`
    : `daemons started without ${SHELL_ONLY_VARS.join(', ')}, as the installed units run them (--shell-env to keep it)`
}
