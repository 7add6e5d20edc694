/**
 * A UDP query whose source port is 0 cannot be answered (RFC 768: no port to reply to),
 * and must not take the DNS service down. Before this test, one such datagram ended the
 * process: dgram's send refused port 0 with a throw, from the fast path (a cached
 * answer: an uncaught exception) and from the handler's reply (an unhandled rejection).
 *
 * A port-0 datagram needs a raw socket, so the service and the sender run in their own
 * network namespace (unshare -rn): everything stays on that namespace's loopback.
 */
import { describe, expect, it } from 'vitest';
import { have, runDnsInNamespace } from './dns-in-namespace.ts';

const tools = ['unshare', 'ip', 'python3'];

/**
 * Asks NAME A from an ordinary socket (the answer is cached: the next such query is a
 * fast-path hit), sends the same bytes from source port 0 through a raw socket, then a
 * query for a name not in the cache (the handler's path), and asks NAME again: prints
 * one line per step.
 */
const SENDER = String.raw`
import socket, struct, sys
port = int(sys.argv[1])
def query(name, qid):
    q = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    for label in name.split('.'):
        q += bytes([len(label)]) + label.encode()
    return q + b'\0' + struct.pack('>HH', 1, 1)
def ask(name, qid):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(query(name, qid), ('127.0.0.1', port))
    try:
        r = s.recv(512)
        return 'rcode=%d an=%d' % (r[3] & 15, struct.unpack('>H', r[6:8])[0])
    except socket.timeout:
        return 'no answer'
def from_port_zero(name, qid):
    q = query(name, qid)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    # UDP header: source port 0, checksum 0 (none, allowed over IPv4); the kernel adds the IP header.
    raw.sendto(struct.pack('>HHHH', 0, port, 8 + len(q), 0) + q, ('127.0.0.1', 0))
print('first', ask('kith.home.arpa', 1), flush=True)
from_port_zero('kith.home.arpa', 2)
from_port_zero('not-cached.home.arpa', 3)
print('sent-from-port-zero', flush=True)
print('again', ask('kith.home.arpa', 4), flush=True)
`;

describe(`DNS: a UDP query from source port 0 (needs ${tools.join(', ')}, user namespaces)`, () => {
  it('has every tool it needs', () => {
    expect(tools.filter((t) => !have(t))).toEqual([]);
  });

  it('is dropped, and the service goes on answering', async () => {
    const r = await runDnsInNamespace({
      prefix: 'kith-dns-port0-',
      files: { 'sender.py': SENDER },
      scenario: `python3 "$(dirname "$0")/sender.py" 5300
kill -0 $pid && echo "same-process=yes"`,
      timeoutMs: 60_000,
    });
    const { log } = r;
    const why = `${r.stdout}\n${r.stderr}\n${log}`;
    expect(r.stdout, why).toMatch(/^first rcode=0 an=1$/m);
    expect(r.stdout, why).toContain('sent-from-port-zero');
    expect(r.stdout, why).toMatch(/^again rcode=0 an=1$/m);
    expect(r.stdout, why).toContain('same-process=yes');
    expect(log).not.toMatch(/"level":"error"/);
  }, 90_000);
});
