import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ParseError } from '../../src/shared/errors.js'
import { parseIgdDescription, parseSoapResponse, parseSsdpResponse, soapRequest, ssdpSearchRequest } from '../../src/client/portmap/igd-xml.js'

/** The shape miniupnpd serves as rootDesc.xml: the WAN connection service two devices deep. */
const ROOT_DESC = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337">
<specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`

describe('SSDP', () => {
  it('asks for an InternetGatewayDevice', () => {
    const req = ssdpSearchRequest(2)
    expect(req).toMatch(/^M-SEARCH \* HTTP\/1\.1\r\n/)
    expect(req).toContain('MAN: "ssdp:discover"\r\nMX: 2\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n')
  })

  it('takes the LOCATION of an answer, headers in any case', () => {
    const r = parseSsdpResponse('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nst: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLocation: http://198.19.2.1:41234/rootDesc.xml\r\n\r\n')
    expect(r).toEqual({ location: 'http://198.19.2.1:41234/rootDesc.xml', st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1' })
  })

  it.each([
    ['a NOTIFY', 'NOTIFY * HTTP/1.1\r\nLOCATION: http://a/\r\n\r\n'],
    ['no LOCATION', 'HTTP/1.1 200 OK\r\nST: x\r\n\r\n'],
    ['a LOCATION that is no URL', 'HTTP/1.1 200 OK\r\nLOCATION: not a url\r\n\r\n'],
    ['an https LOCATION', 'HTTP/1.1 200 OK\r\nLOCATION: https://198.19.2.1/d.xml\r\n\r\n']
  ])('rejects %s', (_name, text) => {
    expect(() => parseSsdpResponse(text)).toThrow(ParseError)
  })
})

describe('IGD description', () => {
  it('finds the WANIPConnection control URL, resolved against the description URL', () => {
    expect(parseIgdDescription(ROOT_DESC, 'http://198.19.2.1:41234/rootDesc.xml')).toEqual({
      serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1',
      controlUrl: 'http://198.19.2.1:41234/ctl/IPConn'
    })
  })

  it('prefers WANIPConnection:2 over :1 and PPP, and honours URLBase', () => {
    const xml = `<root><URLBase>http://10.0.0.1:5000/</URLBase><device><serviceList>
      <service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/ppp</controlURL></service>
      <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>ip2</controlURL></service>
    </serviceList></device></root>`
    expect(parseIgdDescription(xml, 'http://10.0.0.1:80/desc.xml')).toEqual({ serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: 'http://10.0.0.1:5000/ip2' })
  })

  it.each([
    ['not XML', '<root><device>'],
    ['no root', '<html><body>router login</body></html>'],
    ['no WAN connection service', ROOT_DESC.replace('WANIPConnection:1', 'WANIPv6FirewallControl:1')],
    ['a non-http control URL', ROOT_DESC.replace('/ctl/IPConn', 'file:///etc/passwd')]
  ])('rejects %s', (_name, xml) => {
    expect(() => parseIgdDescription(xml, 'http://198.19.2.1/rootDesc.xml')).toThrow(ParseError)
  })

  it('never throws anything but ParseError on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
      try { parseIgdDescription(text, 'http://10.0.0.1/d.xml') } catch (err) { if (!(err instanceof ParseError)) throw err }
      try { parseSoapResponse(text, 'AddPortMapping') } catch (err) { if (!(err instanceof ParseError)) throw err }
      try { parseSsdpResponse(text) } catch (err) { if (!(err instanceof ParseError)) throw err }
    }), { numRuns: 1000 })
  })
})

describe('SOAP', () => {
  it('builds an envelope with escaped arguments in order', () => {
    const xml = soapRequest('urn:schemas-upnp-org:service:WANIPConnection:1', 'AddPortMapping', [['NewRemoteHost', ''], ['NewExternalPort', 51820], ['NewPortMappingDescription', 'wg <&> nat']])
    expect(xml).toContain('<s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost></NewRemoteHost><NewExternalPort>51820</NewExternalPort><NewPortMappingDescription>wg &lt;&amp;&gt; nat</NewPortMappingDescription></u:AddPortMapping></s:Body>')
  })

  it('reads the output arguments of an answer', () => {
    const xml = '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>198.18.12.2</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>'
    expect(parseSoapResponse(xml, 'GetExternalIPAddress')).toEqual({ ok: true, values: { NewExternalIPAddress: '198.18.12.2' } })
  })

  it('reads a UPnP fault', () => {
    const xml = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>'
    expect(parseSoapResponse(xml, 'AddPortMapping')).toEqual({ ok: false, fault: { errorCode: 718, errorDescription: 'ConflictInMappingEntry' } })
  })

  it('rejects an answer to another action', () => {
    const xml = '<s:Envelope xmlns:s="x"><s:Body><u:DeletePortMappingResponse/></s:Body></s:Envelope>'
    expect(() => parseSoapResponse(xml, 'AddPortMapping')).toThrow(/no AddPortMappingResponse/)
  })
})
