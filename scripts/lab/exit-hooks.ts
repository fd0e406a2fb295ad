import { teardownSync } from './teardown.js'
import type { LabState } from './state-file.js'

/**
 * Labs owned by this process are torn down synchronously when it exits or is interrupted, so a crashed
 * test or Ctrl-C leaves nothing behind. A process killed with SIGKILL cannot run hooks: the stale sweep
 * (`down --stale`, also run by createLab) removes its labs once its pid is gone.
 *
 * A process forked with an IPC channel (a vitest fork worker) also tears its labs down when the channel
 * closes: when the test runner dies (SIGTERM to the runner alone), its orphaned worker can hang forever
 * and never reach afterAll, while its pid stays alive so the stale sweep would not touch the labs.
 */

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
const live = new Map<string, () => LabState>()
let installed = false

export function registerLab (id: string, currentState: () => LabState): void {
  live.set(id, currentState)
  install()
}

export function unregisterLab (id: string): void {
  live.delete(id)
  if (live.size === 0) uninstall()
}

function teardownAll (): void {
  for (const [id, currentState] of [...live]) {
    live.delete(id)
    try {
      teardownSync(currentState())
    } catch {
      // Best-effort: the stale sweep gets whatever is left.
    }
  }
}

function onExit (): void {
  teardownAll()
}

function onSignal (signal: NodeJS.Signals): void {
  teardownAll()
  uninstall()
  // Without our listener, the signal's default action (or the remaining listeners) applies again.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function onDisconnect (): void {
  teardownAll()
  uninstall()
}

function install (): void {
  if (installed) return
  installed = true
  process.on('exit', onExit)
  for (const signal of SIGNALS) process.on(signal, onSignal)
  if (process.connected) process.on('disconnect', onDisconnect)
}

function uninstall (): void {
  if (!installed) return
  installed = false
  process.off('exit', onExit)
  for (const signal of SIGNALS) process.off(signal, onSignal)
  process.off('disconnect', onDisconnect)
}
