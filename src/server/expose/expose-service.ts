import { readFile } from 'node:fs/promises'
import { WgnatError, messageOf, quote } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import { describeExpose, resolveExposes, type ExposePeer, type ReservedPort, type ResolvedExpose } from './expose-resolve.js'
import { guardedFamilies } from './expose-counters.js'
import { exposeTableName, renderDeleteTable, renderExposeRuleset, type Family } from './expose-ruleset.js'
import { ExposeSpecError, parseExposeFile, type ExposeSpec } from './expose-spec.js'
import type { ForwardingControl } from './ip-forwarding.js'
import type { NftControl } from '../../shared/nft.js'

export interface ExposeServiceInit {
  iface: string
  /** From `--expose`. */
  specs: readonly ExposeSpec[]
  /** `--expose-file`: read at start and on every reload. */
  file?: string
  preserveSource: boolean
  /** Ports the hub serves on itself. */
  reserved: readonly ReservedPort[]
}

export interface ExposeServiceComponents {
  logger: Logger
  nft: NftControl
  forwarding: ForwardingControl
  /** The interface's peers as last read (the registry's snapshot). */
  peers: () => Iterable<ExposePeer>
  /** Public key -> name. */
  names: () => Promise<ReadonlyMap<string, string>>
  readText?: (path: string) => Promise<string>
  /** More ports the hub uses now (sockets reachable from outside the tunnel), read at each start and reload. */
  busyPorts?: () => Promise<readonly ReservedPort[]>
}

export interface ExposeService {
  /** Install the rules, then turn forwarding on. Throws (exit 64 for a bad spec) with nothing installed. */
  start (): Promise<void>
  /** Re-read the file, names and peers; replace the rules at once. On any error the old set stays and false is returned. */
  reload (): Promise<boolean>
  /** Forwarding back as it was, then the table removed. */
  stop (): Promise<void>
  readonly exposes: readonly ResolvedExpose[]
}

/** Forwards public ports of the hub into the tunnel (kernel DNAT), as `--expose` and `--expose-file` say. */
export function createExposeService (init: ExposeServiceInit, components: ExposeServiceComponents): ExposeService {
  const { logger, nft, forwarding } = components
  const readText = components.readText ?? (async (path: string) => await readFile(path, 'utf8'))
  /** Families whose forwarding wgnat turned on, to turn off again on stop. */
  const owned = new Set<Family>()
  let current: ResolvedExpose[] = []
  let installed = false
  let stopped = false
  let queue: Promise<void> = Promise.resolve()

  async function plan (inherited: readonly Family[] = []): Promise<{ exposes: ResolvedExpose[], script: string, enable: Family[] }> {
    const specs = [...init.specs]
    if (init.file !== undefined) {
      let text: string
      try { text = await readText(init.file) } catch (err) { throw new ExposeSpecError(`cannot read expose file ${quote(init.file)}: ${messageOf(err)}`) }
      specs.push(...parseExposeFile(text, init.file))
    }
    const busy = await components.busyPorts?.() ?? []
    const exposes = resolveExposes(specs, { peers: components.peers(), names: await components.names(), reserved: [...init.reserved, ...busy] })
    const families = [...new Set(exposes.map((e) => e.family))]
    const enable: Family[] = []
    for (const family of families) {
      if (owned.has(family) || inherited.includes(family)) continue
      const on = await forwarding.get(family)
      if (on === undefined) throw new ExposeSpecError(`cannot expose over ${family}: this kernel has no ${family} forwarding`)
      if (!on) enable.push(family)
    }
    const guardFamilies = [...new Set([...owned, ...inherited, ...enable])]
    return { exposes, script: renderExposeRuleset(exposes, { iface: init.iface, preserveSource: init.preserveSource, guardFamilies }), enable }
  }

  async function install (next: Awaited<ReturnType<typeof plan>>): Promise<void> {
    await nft.apply(next.script)
    installed = true
    current = next.exposes
    for (const family of next.enable) {
      try {
        await forwarding.set(family, true)
      } catch (err) {
        throw new WgnatError(`--expose: cannot turn on ${family} forwarding: ${messageOf(err)} (run as root)`, 77)
      }
      owned.add(family)
      logger.info(`${family} forwarding turned on for exposes (off again on exit)`)
    }
  }

  function announce (): void {
    if (current.length === 0) logger.info('no exposes')
    for (const e of current) logger.info(`exposing ${describeExpose(e)}${init.preserveSource ? ', client address kept' : ''}: public, to anyone who reaches the hub`)
  }

  async function reloadNow (): Promise<boolean> {
    let next
    try {
      next = await plan()
    } catch (err) {
      logger.error(`reload: ${messageOf(err)}; keeping the ${current.length} exposes in place`)
      return false
    }
    try {
      await install(next)
    } catch (err) {
      logger.error(`reload: ${messageOf(err)}; keeping the ${current.length} exposes in place`)
      return false
    }
    logger.info(`reloaded: ${current.length} exposes`)
    announce()
    return true
  }

  async function startNow (): Promise<void> {
    // A run that was killed (SIGKILL, power loss) left its table, and forwarding on: its guard rules say for which
    // families. Those count as ours (guarded, off again on exit), but only once our own rules are in: a start
    // that fails changes nothing, not even for a wgnat-server still running on this interface.
    const table = exposeTableName(init.iface)
    const inherited: Family[] = []
    for (const family of guardedFamilies(await nft.listTable('inet', table).catch(() => undefined))) {
      if (await forwarding.get(family) === true) inherited.push(family)
    }
    try {
      await install(await plan(inherited))
    } catch (err) {
      stopped = true // no reload after a failed start
      await removeAll()
      throw err
    }
    for (const family of inherited) {
      owned.add(family)
      logger.warn(`an earlier run left table inet ${table} and ${family} forwarding on: replaced; forwarding off again on exit`)
    }
    announce()
  }

  async function removeAll (): Promise<void> {
    for (const family of owned) await forwarding.set(family, false).catch((err) => { logger.warn(`cannot turn ${family} forwarding off again: ${messageOf(err)}`) })
    owned.clear()
    if (installed) {
      await nft.apply(renderDeleteTable(init.iface)).catch((err) => { logger.warn(`cannot remove the expose rules: ${messageOf(err)}`) })
      installed = false
    }
  }

  /** Start, reloads and stop run one after the other, in the order they were asked for. */
  function enqueue<T> (step: () => Promise<T>): Promise<T> {
    const run = queue.then(step)
    queue = run.then(() => {}, () => {})
    return run
  }

  return {
    get exposes () { return current },
    async start () {
      await enqueue(startNow)
    },
    async reload () {
      // Never after stop (or a failed start): a SIGHUP while stopping must not put rules back.
      return await enqueue(async () => stopped ? false : await reloadNow())
    },
    async stop () {
      stopped = true
      await enqueue(removeAll)
    }
  }
}
