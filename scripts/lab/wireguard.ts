import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { quote } from '../../src/shared/errors.js'
import { inNs, run, spawnDaemon } from './command.js'
import { LabError } from './lab-error.js'
import { wgSocketPath } from './teardown.js'
import { WG_START_POLL_MS, WG_START_TIMEOUT_MS } from './timings.js'

/** wireguard-go daemons and `wg` key handling for the lab. Private keys stay in memory and 0600 temp files. */

const WG_GO_ENV = { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'error' }
const LOG_TAIL_CHARS = 300
const KEY_PATTERN = /^[A-Za-z0-9+/]{43}=$/

export interface KeyPair {
  privateKey: string
  publicKey: string
}

export async function generateKeyPair (): Promise<KeyPair> {
  const privateKey = (await run(['wg', 'genkey'])).stdout.trim()
  if (!KEY_PATTERN.test(privateKey)) throw new LabError('wg genkey: output is not a base64 key')
  const publicKey = (await run(['wg', 'pubkey'], { input: privateKey + '\n' })).stdout.trim()
  if (!KEY_PATTERN.test(publicKey)) throw new LabError(`wg pubkey: output ${quote(publicKey)} is not a base64 key`)
  return { privateKey, publicKey }
}

/**
 * Start `wireguard-go -f IFNAME` inside a namespace (ip netns exec execs it, so the pid is wireguard-go's)
 * and wait until its UAPI socket exists.
 */
export async function startWireguardGo (ns: string, ifname: string, logDir: string): Promise<ChildProcess> {
  const logPath = join(logDir, `${ifname}.log`)
  const child = spawnDaemon(inNs(ns, ['wireguard-go', '-f', ifname]), logPath, WG_GO_ENV)
  let exited: string | undefined
  child.once('exit', (code, signal) => { exited = signal ?? `exit code ${code}` })
  child.once('error', err => { exited = err.message })
  const socket = wgSocketPath(ifname)
  const deadline = Date.now() + WG_START_TIMEOUT_MS
  while (!existsSync(socket)) {
    if (exited !== undefined || Date.now() > deadline) {
      if (exited === undefined) child.kill('SIGKILL')
      const why = exited ?? `no socket ${quote(socket)} after ${WG_START_TIMEOUT_MS} ms`
      throw new LabError(`wireguard-go ${quote(ifname)} in ${quote(ns)}: ${why}: ${quote(logTail(logPath))}`)
    }
    await new Promise(resolve => setTimeout(resolve, WG_START_POLL_MS))
  }
  return child
}

/**
 * `wg set IF private-key FILE ...rest`: the key goes through a 0600 file in the lab's private directory,
 * deleted as soon as `wg` has read it.
 */
export async function wgSetWithKey (ifname: string, privateKey: string, keyDir: string, rest: string[]): Promise<void> {
  const keyFile = join(keyDir, `${ifname}.key`)
  writeFileSync(keyFile, privateKey + '\n', { mode: 0o600, flag: 'wx' })
  try {
    await run(['wg', 'set', ifname, 'private-key', keyFile, ...rest])
  } finally {
    rmSync(keyFile, { force: true })
  }
}

function logTail (path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().slice(-LOG_TAIL_CHARS)
  } catch {
    return ''
  }
}
