import type { RunIo } from '../../shared/cli.js'
import { installServiceCommand } from '../../shared/service/install-service.js'

/** `wgnat-server install-service -i wg0`: install wgnat-server@.service and enable wgnat-server@wg0. */
export async function runInstallService (argv: string[], io?: RunIo): Promise<number> {
  return await installServiceCommand('server', argv, io)
}
