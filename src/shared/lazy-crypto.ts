import { createRequire } from 'node:module'

type NodeCrypto = typeof import('node:crypto')
let loaded: NodeCrypto | undefined

/**
 * `node:crypto`, loaded on first use. Loading it (and its 22 internal modules) cost a client about 7 ms of CPU before
 * its first attempts, where nothing needs it: STUN and PCP need random ids only once NAT discovery starts, and a
 * pair's retry slot only after a failed attempt (issue 16). Through require: the bundle runs under vm.Script, which
 * has no dynamic import().
 */
export function nodeCrypto (): NodeCrypto {
  loaded ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto
  return loaded
}
