/**
 * Do the servers give the same answers? Speed means nothing if they do not, so before
 * the load each server is asked a sample of the query file and its replies are compared
 * with the reference's (NSD) by what a client acts on: RCODE, the AA bit and the answer
 * count (RFC 1035 §4.1.1). Authority/additional sections differ by design between servers
 * and are not compared.
 */
import dgram from 'node:dgram';

const TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33 };
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export interface Brief { rcode: string; aa: boolean; answers: number }

function query(name: string, type: string, id: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(1, 4);
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPES[type] ?? 1, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, ...parts, Buffer.from([0]), tail]);
}

/** Ask `port` each question (one at a time, 1 s timeout each); null where no reply came. */
export async function ask(port: number, questions: string[]): Promise<(Brief | null)[]> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const out: (Brief | null)[] = [];
  try {
    for (let i = 0; i < questions.length; i++) {
      const [name = '', type = 'A'] = questions[i]!.split(' ');
      const id = (i * 7919 + 1) & 0xffff;
      out.push(await new Promise<Brief | null>((resolve) => {
        const t = setTimeout(() => { sock.off('message', on); resolve(null); }, 1000);
        const on = (msg: Buffer) => {
          if (msg.length < 12 || msg.readUInt16BE(0) !== id) return;
          clearTimeout(t);
          sock.off('message', on);
          resolve({ rcode: RCODES[msg[3]! & 0xf] ?? String(msg[3]! & 0xf), aa: (msg[2]! & 0x04) !== 0, answers: msg.readUInt16BE(6) });
        };
        sock.on('message', on);
        sock.send(query(name, type, id), port, '127.0.0.1');
      }));
    }
  } finally {
    sock.close();
  }
  return out;
}

export interface Agreement { server: string; asked: number; differ: number; examples: string[] }

export function compare(server: string, questions: string[], got: (Brief | null)[], ref: (Brief | null)[], ignoreAa = false): Agreement {
  const fmt = (b: Brief | null) => (b ? `${b.rcode}${b.aa ? ' aa' : ''} an=${b.answers}` : 'no reply');
  let differ = 0;
  const examples: string[] = [];
  for (let i = 0; i < questions.length; i++) {
    const a = got[i] ?? null;
    const b = ref[i] ?? null;
    if (a && b && a.rcode === b.rcode && (ignoreAa || a.aa === b.aa) && a.answers === b.answers) continue;
    differ++;
    if (examples.length < 4) examples.push(`${questions[i]}: ${fmt(a)} (reference: ${fmt(b)})`);
  }
  return { server, asked: questions.length, differ, examples };
}
