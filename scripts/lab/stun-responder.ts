import { createStunServer } from '../../src/server/stun-server.js'
import { silentLogger } from '../../src/shared/log.js'

/**
 * The lab's STUN server on the internet side, for the port-mapping routers' miniupnpd: wgnat's own STUN server
 * (src/server/stun-server.ts), which answers every Binding request from the address it was sent to. miniupnpd's
 * check sends four requests, three with RFC 5780 CHANGE-REQUEST; coturn without a second address refuses those
 * (420), and miniupnpd then believes it sits behind a NAT. Usage: node stun-responder.js <address> <port>
 */
const [address = '0.0.0.0', portText = '3478'] = process.argv.slice(2)
const server = createStunServer({ addresses: [address], port: Number(portText), ratePerSecond: 1000, burst: 1000 }, { logger: silentLogger() })
await server.start()
const stop = (): void => { void server.stop().then(() => process.exit(0)) }
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
