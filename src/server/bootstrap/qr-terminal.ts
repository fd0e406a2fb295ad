import QRCode from 'qrcode'

/** A QR code of `text` drawn with block characters for a terminal (what a phone's WireGuard app scans). */
export async function qrForTerminal (text: string): Promise<string> {
  return await QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })
}
