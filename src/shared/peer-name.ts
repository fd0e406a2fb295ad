/**
 * A peer's name: a lowercase letter, then up to 31 of `[a-z0-9-]`, not ending in `-` (usable as a hostname label).
 * Shared: the hub validates what it stores, clients vet what the registry sends.
 */
export const PEER_NAME_RE = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/
