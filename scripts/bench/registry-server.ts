/**
 * Child process of the registry benchmark: a real RegistryService and HTTP server over a synthetic device.
 * Messages from the parent: { move: i } changes peer i's endpoint; { usage: true } answers with RSS and CPU time.
 */
import { closeAll, listenOn, registryHandler } from '../../src/server/registry-http.js'
import { RegistryService } from '../../src/server/registry-service.js'
import { silentLogger } from '../../src/shared/log.js'
import { syntheticWg } from './synthetic-wg.js'

const peers = Number(process.argv[2] ?? 1000)
const port = Number(process.argv[3] ?? 18080)
const wg = syntheticWg(peers)
const service = new RegistryService({ iface: 'bench0', pollMs: 1000 }, { wg, logger: silentLogger() })
await service.start()
const servers = await listenOn(['127.0.0.1'], port, registryHandler(service, silentLogger()))

process.on('message', (msg: { move?: number, usage?: boolean, gc?: boolean, stop?: boolean }) => {
  if (msg.move !== undefined) wg.moveEndpoint(msg.move)
  if (msg.usage === true) {
    const rssBeforeGc = process.memoryUsage().rss
    if (msg.gc === true) (globalThis as { gc?: () => void }).gc?.()
    const cpu = process.cpuUsage()
    const mu = process.memoryUsage(); process.send?.({ heapUsed: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, rssBeforeGc, rss: mu.rss, cpuMs: (cpu.user + cpu.system) / 1000, version: service.table.version })
  }
  if (msg.stop === true) {
    service.stop()
    void closeAll(servers).then(() => process.exit(0))
  }
})
process.send?.({ ready: true })
