/**
 * A calibration server, not a DNS server: the cheapest reply Node's dgram can give, each
 * query sent back as its own answer (QR set, RCODE NOERROR, no records; RFC 1035 §4.1.1
 * header only). It marks the ceiling any Node UDP server reaches on this machine, so
 * kith's figures can be read against what the runtime allows.
 *
 *   node bench/dns/echo.ts PORT
 */
import dgram from 'node:dgram';

const port = Number(process.argv[2]);
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  msg[2] = (msg[2]! | 0x80) & ~0x02; // QR, not TC
  msg[3] = 0; // RA clear, RCODE NOERROR
  sock.send(msg, rinfo.port, rinfo.address);
});
sock.bind(port, '127.0.0.1');
process.on('SIGTERM', () => sock.close(() => process.exit(0)));
