/**
 * Pure text edits for installing the shipped systemd units: the ExecStart line pointed at this installation, and
 * WGNAT_* variables set in an EnvironmentFile. No I/O.
 */

/** Quote one word for a systemd command line (spaces, quotes, backslashes, `%` and `$` specifiers escaped). */
export function systemdWord (word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped
}

/** The unit text with its ExecStart= running `argv` (absolute paths: node and the CLI's script). */
export function renderUnit (template: string, argv: string[]): string {
  const line = `ExecStart=${argv.map(systemdWord).join(' ')}`
  let found = false
  const out = template.replace(/^ExecStart=.*$/m, () => { found = true; return line })
  if (!found) throw new Error('unit template has no ExecStart= line')
  return out
}

/** A valid WGNAT_* variable name and a value fit for an EnvironmentFile line (one line, no NUL). */
const ENV_NAME_RE = /^WGNAT_[A-Z0-9_]+$/

/**
 * Set variables in EnvironmentFile text: an existing `NAME=` line is replaced in place (later ones for the same name are
 * dropped), others are appended. Every other line (comments, other variables) is kept as it is. Values are
 * double-quoted when they need it.
 */
export function upsertEnv (text: string, vars: Record<string, string>): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n')
  for (const [name, value] of Object.entries(vars)) {
    if (!ENV_NAME_RE.test(name)) throw new Error(`not a WGNAT_* variable name: ${name}`)
    if (/[\n\r\0]/.test(value)) throw new Error(`value of ${name} must be one line`)
    const quoted = /^[A-Za-z0-9_.,:/@+=-]*$/.test(value) ? value : `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
    const line = `${name}=${quoted}`
    // systemd reads a line with leading blanks too, and the last assignment wins: the first is replaced and any other
    // dropped, so the value set here is the one the service gets.
    const assigns = (l: string): boolean => new RegExp(`^\\s*${name}\\s*=`).test(l)
    const at = lines.findIndex(assigns)
    if (at >= 0) {
      lines[at] = line
      for (let i = lines.length - 1; i > at; i--) if (assigns(lines[i] as string)) lines.splice(i, 1)
    } else {
      lines.push(line)
    }
  }
  return lines.join('\n') + '\n'
}
