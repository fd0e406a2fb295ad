import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import * as z from 'zod'
import { writeFileAtomic } from '../../shared/atomic-write.js'
import { EXIT_DATAERR, WgError, WgnatError, messageOf, quote } from '../../shared/errors.js'
import type { WgControl } from '../../shared/wg.js'
import { shortKey, type WgDevice } from '../../shared/wg-dump.js'
import { addInterfaceEntry, addPeerSection, makeSection, parseWgQuickConfig, peersOf, removeInterfaceEntry, removePeerSection, renderWgQuickConfig, type WgQuickConfig } from '../../shared/wg-quick-config.js'
import { wgKeySchema } from '../../shared/protocol.js'
import { readPeerNames, writePeerNames } from '../inventory/peer-names.js'
import { hasHook } from './hub-config.js'

/** `<config-dir>/<interface>.conf`, the file `wg-quick up <interface>` reads. */
export function configPath (configDir: string, iface: string): string {
  return join(configDir, `${iface}.conf`)
}

/** Read and validate the hub's saved config. Missing: exit 69 (no such hub); broken: exit 65 quoting the line. */
export async function loadConfig (configDir: string, iface: string): Promise<WgQuickConfig> {
  const path = configPath(configDir, iface)
  let text: string
  try { text = await readFile(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new WgnatError(`no config ${quote(path)}: make the hub with \`wgnat-server init -i ${iface}\` or pass --config-dir`, 69)
    throw new WgnatError(`cannot read ${quote(path)}: ${messageOf(err)}`, 77)
  }
  try {
    return parseWgQuickConfig(text, path)
  } catch (err) {
    throw new WgnatError(messageOf(err), EXIT_DATAERR)
  }
}

export async function saveConfig (configDir: string, iface: string, config: WgQuickConfig): Promise<void> {
  await writeFileAtomic(configPath(configDir, iface), renderWgQuickConfig(config), 0o600)
}

/**
 * What one change means to make true for one peer: present (with these allowed IPs, name and hooks) or absent.
 * Written to `<state-dir>/<interface>.pending.json` before the change starts and removed when it is done, so a
 * command killed half-way is noticed and finished by the next one.
 */
const intentSchema = z.object({
  op: z.enum(['add-peer', 'remove-peer']),
  publicKey: wgKeySchema,
  name: z.string().optional(),
  allowedIps: z.array(z.string()).default([]),
  /** PostUp/PostDown pair of a full-tunnel peer. */
  hooks: z.object({ up: z.string(), down: z.string() }).optional()
})
export type Intent = z.infer<typeof intentSchema>

function intentPath (stateDir: string, iface: string): string {
  return join(stateDir, `${iface}.pending.json`)
}

export interface HubStoreInit {
  iface: string
  configDir: string
  stateDir: string
}

export interface HubStoreComponents {
  wg: WgControl
  /** A repair or a skipped step, for the user (stderr). */
  notice: (line: string) => void
}

/**
 * The hub's peers in three places that must agree: the saved config (what `wg-quick up` restores), the live
 * interface, and the names store. Every change goes through `apply(intent)`, which is idempotent: it makes all three
 * match the intent, whatever part of it was already done. Callers hold the state lock.
 */
export class HubStore {
  private readonly init: HubStoreInit
  private readonly wg: WgControl
  private readonly notice: (line: string) => void

  constructor (init: HubStoreInit, components: HubStoreComponents) {
    this.init = init
    this.wg = components.wg
    this.notice = components.notice
  }

  /** The live interface, or undefined when it is not up (the saved config is then all there is). */
  async live (): Promise<WgDevice | undefined> {
    try {
      return await this.wg.show(this.init.iface)
    } catch (err) {
      if (err instanceof WgError && err.exitCode === 69 && /^interface .* not found/.test(err.message)) return undefined
      throw err
    }
  }

  /**
   * Notice and repair what an interrupted command left: a pending add is undone (its spoke config was never
   * printed), a pending remove is finished; then peers of the saved config missing from the live interface are
   * added to it. Says what it repaired through `notice`.
   */
  async repair (): Promise<void> {
    const { iface, stateDir } = this.init
    const path = intentPath(stateDir, iface)
    let pending: Intent | undefined
    try {
      const parsed = intentSchema.safeParse(JSON.parse(await readFile(path, 'utf8')))
      if (parsed.success) pending = parsed.data
      else this.notice(`repair: ignoring unreadable ${quote(path)}`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.notice(`repair: ignoring unreadable ${quote(path)}`)
    }
    if (pending !== undefined) {
      const who = pending.name ?? shortKey(pending.publicKey)
      await this.converge({ ...pending, op: 'remove-peer' })
      await rm(path, { force: true })
      this.notice(pending.op === 'add-peer'
        ? `repair: an interrupted add-peer of ${quote(who)} was undone (its config was never printed); run it again`
        : `repair: an interrupted remove-peer of ${quote(who)} was finished`)
    }
    const device = await this.live()
    if (device === undefined) return
    const config = await loadConfig(this.init.configDir, iface)
    const live = new Set(device.peers.map((p) => p.publicKey))
    const missing = peersOf(config).filter((p) => !live.has(p.publicKey))
    if (missing.length > 0) {
      await this.wg.set(iface, missing.map((p) => ({ publicKey: p.publicKey, allowedIps: p.allowedIps })))
      for (const p of missing) this.notice(`repair: peer ${shortKey(p.publicKey)} was in the saved config but not on ${iface}: added it`)
    }
  }

  /** Make one change, journalled: killed half-way, the next command's `repair()` finishes or undoes it. */
  async apply (intent: Intent): Promise<void> {
    const path = intentPath(this.init.stateDir, this.init.iface)
    await writeFileAtomic(path, JSON.stringify(intent) + '\n')
    await this.converge(intent)
    await rm(path, { force: true })
  }

  private async converge (intent: Intent): Promise<void> {
    const { iface, configDir, stateDir } = this.init
    const present = intent.op === 'add-peer'
    // 1. Names (a name without a peer is harmless; a peer without its name only shows as a key).
    const names = await readPeerNames(stateDir, iface)
    const hadName = names.get(intent.publicKey)
    if (present && intent.name !== undefined && hadName !== intent.name) {
      // A stale entry of the same name (its peer gone by hand) gives way.
      for (const [key, name] of names) if (name === intent.name) names.delete(key)
      names.set(intent.publicKey, intent.name)
      await writePeerNames(stateDir, iface, names)
    }
    // 2. The saved config.
    const config = await loadConfig(configDir, iface)
    const inConfig = peersOf(config).find((p) => p.publicKey === intent.publicKey)
    const hooksWereSaved = intent.hooks !== undefined && hasHook(config, 'PostUp', intent.hooks.up)
    let changed = false
    if (present && inConfig === undefined) {
      addPeerSection(config, makeSection('Peer', [['PublicKey', intent.publicKey], ['AllowedIPs', intent.allowedIps.join(', ')]]))
      changed = true
    }
    if (!present && inConfig !== undefined) changed = removePeerSection(config, intent.publicKey) || changed
    if (intent.hooks !== undefined) {
      if (present && !hooksWereSaved) {
        addInterfaceEntry(config, 'PostUp', intent.hooks.up)
        addInterfaceEntry(config, 'PostDown', intent.hooks.down)
        changed = true
      } else if (!present && hooksWereSaved) {
        removeInterfaceEntry(config, 'PostUp', intent.hooks.up)
        removeInterfaceEntry(config, 'PostDown', intent.hooks.down)
        changed = true
      }
    }
    if (changed) await saveConfig(configDir, iface, config)
    // 3. The live interface (when it is up; `wg-quick up` applies the saved config otherwise).
    const device = await this.live()
    if (device === undefined) {
      this.notice(`${iface} is not up: the saved config has the change; \`wg-quick up ${configPath(configDir, iface)}\` applies it`)
    } else {
      const onLive = device.peers.some((p) => p.publicKey === intent.publicKey)
      if (present) await this.wg.set(iface, [{ publicKey: intent.publicKey, allowedIps: intent.allowedIps }])
      else if (onLive) await this.wg.set(iface, [{ publicKey: intent.publicKey, remove: true }])
      if (intent.hooks !== undefined && ((present && !hooksWereSaved) || (!present && hooksWereSaved))) {
        await runHook(present ? intent.hooks.up : intent.hooks.down, iface, this.notice)
      }
    }
    // 4. The name of a removed peer goes last: until then `remove-peer <name>` can be run again.
    if (!present && hadName !== undefined) {
      names.delete(intent.publicKey)
      await writePeerNames(stateDir, iface, names)
    }
  }
}

/** Run a wg-quick hook line now, as wg-quick would (`%i` is the interface). A failure is told, not thrown. */
export async function runHook (line: string, iface: string, notice: (line: string) => void): Promise<void> {
  const result = await execa('bash', ['-c', line.replaceAll('%i', iface)], { reject: false })
  if (result.exitCode !== 0) notice(`hook failed (exit ${String(result.exitCode)}): ${quote(line)}: ${quote(String(result.stderr).split('\n')[0] ?? '')}`)
}
