import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as z from 'zod'
import { EXIT_DATAERR, WgnatError, messageOf, quote } from '../../shared/errors.js'
import { writeFileAtomic } from '../../shared/atomic-write.js'

/**
 * What `init` records about a hub it made, in `<state-dir>/<interface>.hub.json`. Public facts only (no keys).
 * `wgnat-server -i wg0` reads it to turn on what such a hub needs without flags.
 */
const hubStateSchema = z.object({
  version: z.literal(1),
  interface: z.string(),
  /** What spokes put as the hub's Endpoint: `host:port`. */
  endpoint: z.string(),
  /** The hub's config forwards between peers (PostUp): the registry announces that it relays. */
  relay: z.boolean()
})
export type HubState = z.infer<typeof hubStateSchema>

export function hubStatePath (stateDir: string, iface: string): string {
  return join(stateDir, `${iface}.hub.json`)
}

/** The hub's state, or undefined when this hub was not made by `init`. */
export async function readHubState (stateDir: string, iface: string): Promise<HubState | undefined> {
  const path = hubStatePath(stateDir, iface)
  let text: string
  try { text = await readFile(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new WgnatError(`cannot read hub state ${quote(path)}: ${messageOf(err)}`, EXIT_DATAERR)
  }
  let json: unknown
  try { json = JSON.parse(text) } catch { throw new WgnatError(`hub state ${quote(path)}: not JSON`, EXIT_DATAERR) }
  const parsed = hubStateSchema.safeParse(json)
  if (!parsed.success || parsed.data.interface !== iface) throw new WgnatError(`hub state ${quote(path)}: not a wgnat hub state for ${quote(iface)}`, EXIT_DATAERR)
  return parsed.data
}

export async function writeHubState (stateDir: string, state: HubState): Promise<void> {
  await writeFileAtomic(hubStatePath(stateDir, state.interface), JSON.stringify(state, null, 2) + '\n')
}

export async function removeHubState (stateDir: string, iface: string): Promise<void> {
  await rm(hubStatePath(stateDir, iface), { force: true })
}
