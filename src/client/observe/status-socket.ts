import { fetchJson, hasFields, serveJson } from '../../shared/json-socket.js'
import type { ClientStatus } from './status.js'

export { defaultStatusSocket } from './status-socket-path.js'

/** Serve `status()` as JSON to whoever connects to the Unix socket at `path` (mode 0600: root only). */
export async function serveStatus (path: string, status: () => ClientStatus): Promise<{ close: () => Promise<void> }> {
  return await serveJson(path, status)
}

/** Ask a running client for its status. */
export async function fetchStatus (path: string, timeoutMs = 3000): Promise<ClientStatus> {
  return await fetchJson(path, 'wgnat-client', isClientStatus, timeoutMs)
}

/** The outline of a client's status (what `renderStatus` reads at the top level). */
function isClientStatus (v: unknown): v is ClientStatus {
  return hasFields(v, { interface: 'string', registry: 'object', self: 'object', peers: 'array' })
}
