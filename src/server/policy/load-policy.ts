import { readFile } from 'node:fs/promises'
import { messageOf } from '../../shared/errors.js'
import { readPeerNames } from '../inventory/peer-names.js'
import { parsePolicy, type Policy } from './parse-policy.js'
import { PolicyError } from './policy-error.js'

/** A policy file with the peer names it was checked against (its name members resolve through them). */
export interface LoadedPolicy {
  policy: Policy
  /** Public key -> name, from the hub's name store. */
  names: ReadonlyMap<string, string>
  /** The file's text and the names: equal fingerprints, same policy (a reload with nothing new is skipped). */
  fingerprint: string
}

/** Read and check a policy file against the hub's peer names. Throws a one-line PolicyError (exit 64). */
export async function loadPolicy (file: string, stateDir: string, iface: string): Promise<LoadedPolicy> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new PolicyError(`policy ${file}: cannot read: ${messageOf(err)}`)
  }
  let names: ReadonlyMap<string, string>
  try {
    names = await readPeerNames(stateDir, iface)
  } catch (err) {
    throw new PolicyError(`policy ${file}: ${messageOf(err)}`)
  }
  return { policy: parsePolicy(text, file, names), names, fingerprint: JSON.stringify([text, [...names]]) }
}
