import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'

/** A WireGuard key pair in base64. The private key lives in memory only: callers write it to a 0600 file or print it once. */
export interface KeyPair {
  privateKey: string
  publicKey: string
}

/** PKCS#8 DER prefix of an X25519 private key; the 32 key bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** The public key of a base64 X25519 private key, as `wg pubkey` computes it. */
export function publicKeyOf (privateKey: string): string {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')])
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' })
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64')
}

/** A fresh key pair, clamped like `wg genkey`, without running `wg`. */
export function generateKeyPair (): KeyPair {
  const bytes = randomBytes(32)
  bytes[0] = (bytes[0] ?? 0) & 248
  bytes[31] = ((bytes[31] ?? 0) & 127) | 64
  const privateKey = bytes.toString('base64')
  bytes.fill(0)
  return { privateKey, publicKey: publicKeyOf(privateKey) }
}
