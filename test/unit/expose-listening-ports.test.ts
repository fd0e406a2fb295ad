import { describe, expect, it } from 'vitest'
import { parseProcNet, shadowedPorts } from '../../src/server/expose/listening-ports.js'

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2059 1 0 100 0 0 10 0
   2: 01004064:CA6C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2060 1 0 100 0 0 10 0
   3: 020112C6:0016 010112C6:D431 01 00000000:00000000 00:00000000 00000000     0        0 2061 1 0 100 0 0 10 0
   4: 020112C6:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2062 1 0 100 0 0 10 0
   5: garbage
`
const TCP6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1
   2: 0000000000000000FFFF0000020112C6:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1
`
const UDP = `  sl  local_address rem_address   st
  10: 00000000:0D96 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2
  11: 020112C6:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000 0 0 1 2
`

describe('parseProcNet (little-endian words, as on x86 and arm64)', () => {
  it('TCP: listeners only, addresses decoded', () => {
    expect(parseProcNet(TCP, 'tcp', true)).toEqual([
      { proto: 'tcp', address: '0.0.0.0', port: 22 },
      { proto: 'tcp', address: '127.0.0.1', port: 3306 },
      { proto: 'tcp', address: '100.64.0.1', port: 51820 },
      { proto: 'tcp', address: '198.18.1.2', port: 443 }
    ])
  })

  it('TCP over IPv6: ::, ::1 and IPv4-mapped', () => {
    expect(parseProcNet(TCP6, 'tcp', true)).toEqual([
      { proto: 'tcp', address: '::', port: 80 },
      { proto: 'tcp', address: '::1', port: 8080 },
      { proto: 'tcp', address: '198.18.1.2', port: 25 }
    ])
  })

  it('UDP: unconnected sockets only', () => {
    expect(parseProcNet(UDP, 'udp', true)).toEqual([{ proto: 'udp', address: '0.0.0.0', port: 3478 }])
  })

  it('big-endian words', () => {
    expect(parseProcNet('h\n 0: C6120102:0016 00000000:0000 0A\n', 'tcp', false)).toEqual([{ proto: 'tcp', address: '198.18.1.2', port: 22 }])
  })
})

describe('shadowedPorts', () => {
  it('what an expose would hide: sockets reachable from outside the tunnel, not loopback or tunnel-only ones', () => {
    const sockets = [...parseProcNet(TCP, 'tcp', true), ...parseProcNet(TCP6, 'tcp', true), ...parseProcNet(UDP, 'udp', true)]
    expect(shadowedPorts(sockets, ['100.64.0.1']).map((r) => `${r.port}/${r.proto} ${r.what}`)).toEqual([
      '22/tcp in use on the hub (a socket on 0.0.0.0:22)',
      '443/tcp in use on the hub (a socket on 198.18.1.2:443)',
      '80/tcp in use on the hub (a socket on [::]:80)',
      '25/tcp in use on the hub (a socket on 198.18.1.2:25)',
      '3478/udp in use on the hub (a socket on 0.0.0.0:3478)'
    ])
  })
})
