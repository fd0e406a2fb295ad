import { Command, Option } from 'commander'
import { runCommand, socketPathArg, type RunIo } from '../../shared/cli.js'
import { fetchJson, hasFields } from '../../shared/json-socket.js'
import { renderMeshView, type MeshView } from '../mesh/mesh-view.js'

/** Where wgnat-server serves its mesh view by default: root-only directory, one socket per interface. */
export function defaultServerStatusSocket (iface: string): string {
  return `/run/wgnat/${iface}-server.sock`
}

export function serverStatusProgram (): Command {
  return new Command('wgnat-server status')
    .description('Show the whole mesh as the running wgnat-server knows it: every pair of peers (direct / via hub / trying / unreachable), with NAT classes and endpoints, from the paths the clients report.')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the running registry').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--status-socket <path>', 'the registry\'s status socket (default: /run/wgnat/<interface>-server.sock)').argParser(socketPathArg).env('WGNAT_SERVER_STATUS_SOCKET'))
    .option('--json', 'print the mesh view as JSON, the structure the daemon holds (also served at /mesh.json with --http)')
}

/** `wgnat-server status -i wg0 [--json]`. */
export async function runStatus (argv: string[], io?: RunIo): Promise<number> {
  return await runCommand(serverStatusProgram(), argv, async (opts, out) => {
    const iface = opts.interface as string
    const view = await fetchJson((opts.statusSocket as string | undefined) ?? defaultServerStatusSocket(iface), 'wgnat-server', isMeshView)
    out(opts.json === true ? JSON.stringify(view, null, 2) + '\n' : renderMeshView(view))
  }, io)
}

/** The outline of the registry's mesh view (what `renderMeshView` reads at the top level). */
function isMeshView (v: unknown): v is MeshView {
  return hasFields(v, { interface: 'string', nodes: 'array', pairs: 'array' })
}
