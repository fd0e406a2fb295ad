import { createHash } from 'node:crypto'

/** A deterministic, valid-looking WireGuard public key for tests. */
export function testKey (name: string): string {
  const bytes = createHash('sha256').update(name).digest()
  return bytes.toString('base64')
}
