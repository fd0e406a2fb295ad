import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { NatClass, classifyNat, type MappingSample } from '../../src/client/nat/nat-classifier.js'

const LOCAL_PORT = 51820
const LOCAL_ADDRESSES = ['10.0.1.2', '192.168.7.20', 'fd00::2']

function sample (server: string, mapped: string): MappingSample {
  const at = mapped.lastIndexOf(':')
  const address = mapped.slice(0, at).replace(/^\[|\]$/g, '')
  return { server, mapped: { address, port: Number(mapped.slice(at + 1)) } }
}

interface Case {
  name: string
  samples: MappingSample[]
  natClass: NatClass
  publicEndpoint?: { address: string, port: number }
  reason: RegExp
}

const cases: Case[] = [
  {
    name: 'no samples',
    samples: [],
    natClass: NatClass.UNKNOWN,
    reason: /^no mapping samples/
  },
  {
    name: 'one server sees the local endpoint',
    samples: [sample('198.18.0.1:3478', '10.0.1.2:51820')],
    natClass: NatClass.PUBLIC,
    publicEndpoint: { address: '10.0.1.2', port: 51820 },
    reason: /^mapping 10\.0\.1\.2:51820 is the local endpoint \(seen by 1 server\)$/
  },
  {
    name: 'two servers see the local endpoint',
    samples: [sample('198.18.0.1:3478', '192.168.7.20:51820'), sample('198.18.0.2:3478', '192.168.7.20:51820')],
    natClass: NatClass.PUBLIC,
    publicEndpoint: { address: '192.168.7.20', port: 51820 },
    reason: /seen by 2 servers/
  },
  {
    name: 'public over IPv6',
    samples: [sample('[2001:db8::1]:3478', '[fd00:0:0:0:0:0:0:2]:51820')],
    natClass: NatClass.PUBLIC,
    publicEndpoint: { address: 'fd00:0:0:0:0:0:0:2', port: 51820 },
    reason: /^mapping \[fd00::2\]:51820 is the local endpoint/
  },
  {
    name: 'IPv4-mapped IPv6 spelling of a local address still counts as local',
    samples: [sample('198.18.0.1:3478', '[::ffff:10.0.1.2]:51820')],
    natClass: NatClass.PUBLIC,
    publicEndpoint: { address: '::ffff:10.0.1.2', port: 51820 },
    reason: /10\.0\.1\.2:51820/
  },
  {
    name: 'local address but another port from one server (port translation) is not public',
    samples: [sample('198.18.0.1:3478', '10.0.1.2:40000')],
    natClass: NatClass.UNKNOWN,
    reason: /^only one server \(198\.18\.0\.1:3478\) saw mapping 10\.0\.1\.2:40000: need two/
  },
  {
    name: 'two servers agree on a translated endpoint',
    samples: [sample('198.18.0.1:3478', '198.18.11.2:51820'), sample('198.18.0.2:3478', '198.18.11.2:51820')],
    natClass: NatClass.EASY,
    publicEndpoint: { address: '198.18.11.2', port: 51820 },
    reason: /^same mapping 198\.18\.11\.2:51820 seen by 2 servers$/
  },
  {
    name: 'same host, different server ports count as distinct destinations',
    samples: [sample('198.18.0.1:3478', '198.18.11.2:1024'), sample('198.18.0.1:3479', '198.18.11.2:1024')],
    natClass: NatClass.EASY,
    publicEndpoint: { address: '198.18.11.2', port: 1024 },
    reason: /seen by 2 servers/
  },
  {
    name: 'three servers agree, some asked twice',
    samples: [
      sample('a:3478', '203.0.113.5:62000'), sample('b:3478', '203.0.113.5:62000'),
      sample('a:3478', '203.0.113.5:62000'), sample('c:3478', '203.0.113.5:62000')
    ],
    natClass: NatClass.EASY,
    publicEndpoint: { address: '203.0.113.5', port: 62000 },
    reason: /seen by 3 servers/
  },
  {
    name: 'one server asked repeatedly, same answer',
    samples: [sample('a:3478', '203.0.113.5:62000'), sample('a:3478', '203.0.113.5:62000')],
    natClass: NatClass.UNKNOWN,
    reason: /^only one server \(a:3478\)/
  },
  {
    name: 'port differs by destination (symmetric NAT)',
    samples: [sample('a:3478', '198.18.11.2:40001'), sample('b:3478', '198.18.11.2:40002')],
    natClass: NatClass.HARD,
    reason: /^mapping differs by destination: 198\.18\.11\.2:40001 via a:3478; 198\.18\.11\.2:40002 via b:3478$/
  },
  {
    name: 'address differs by destination (multiple public addresses)',
    samples: [sample('a:3478', '198.18.11.2:51820'), sample('b:3478', '198.18.11.3:51820')],
    natClass: NatClass.HARD,
    reason: /198\.18\.11\.3:51820 via b:3478/
  },
  {
    name: 'two agree, a third disagrees',
    samples: [sample('a:3478', '198.18.11.2:51820'), sample('b:3478', '198.18.11.2:51820'), sample('c:3478', '198.18.11.2:9')],
    natClass: NatClass.HARD,
    reason: /198\.18\.11\.2:51820 via a:3478, b:3478; 198\.18\.11\.2:9 via c:3478/
  },
  {
    name: 'one server, mapping changed between probes',
    samples: [sample('a:3478', '198.18.11.2:1000'), sample('a:3478', '198.18.11.2:1001')],
    natClass: NatClass.HARD,
    reason: /mapping differs/
  },
  {
    name: 'one sample local, another translated',
    samples: [sample('a:3478', '10.0.1.2:51820'), sample('b:3478', '198.18.11.2:51820')],
    natClass: NatClass.HARD,
    reason: /mapping differs/
  },
  {
    name: 'many different mappings: the reason stays short',
    samples: ['1', '2', '3', '4', '5'].map(n => sample(`s${n}:3478`, `198.18.11.2:4000${n}`)),
    natClass: NatClass.HARD,
    reason: /via s3:3478, and 2 more$/
  }
]

describe('classifyNat', () => {
  it.each(cases)('$name -> $natClass', ({ samples, natClass, publicEndpoint, reason }) => {
    const result = classifyNat({ localPort: LOCAL_PORT, localAddresses: LOCAL_ADDRESSES, samples })
    expect(result.natClass).toBe(natClass)
    expect(result.publicEndpoint).toEqual(publicEndpoint)
    expect(result.reason).toMatch(reason)
  })

  it('does not alias the sample in publicEndpoint', () => {
    const samples = [sample('a:3478', '198.18.11.2:51820'), sample('b:3478', '198.18.11.2:51820')]
    const result = classifyNat({ localPort: LOCAL_PORT, localAddresses: [], samples })
    result.publicEndpoint!.port = 1
    expect(samples[0]!.mapped.port).toBe(51820)
  })

  it('sets publicEndpoint exactly when the class is public or easy, and never depends on sample order', () => {
    const endpoint = fc.record({
      address: fc.constantFrom('10.0.1.2', '198.18.11.2', '198.18.11.3'),
      port: fc.constantFrom(LOCAL_PORT, 40000)
    })
    const samples = fc.array(fc.record({ server: fc.constantFrom('a:1', 'b:1', 'c:1'), mapped: endpoint }), { maxLength: 6 })
    fc.assert(fc.property(samples, list => {
      const input = { localPort: LOCAL_PORT, localAddresses: LOCAL_ADDRESSES, samples: list }
      const result = classifyNat(input)
      const hasEndpoint = result.natClass === NatClass.PUBLIC || result.natClass === NatClass.EASY
      expect(result.publicEndpoint !== undefined).toBe(hasEndpoint)
      expect(classifyNat({ ...input, samples: [...list].reverse() }).natClass).toBe(result.natClass)
      expect(result.reason.length).toBeGreaterThan(0)
    }), { numRuns: 500 })
  })
})
