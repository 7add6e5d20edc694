/**
 * mDNS / DNS-SD between two hosts (RFC 6762 / 6763): network namespaces A and B joined by a
 * veth pair (as root; nothing else is touched). `kith up --host 0.0.0.0` runs in A; on B,
 * python3-zeroconf browses and resolves every announced service, avahi-browse (its own
 * avahi-daemon, on a private dbus-daemon, /run/avahi-daemon a private tmpfs) sees
 * `_kith._tcp`, dnspython's and dig's legacy unicast queries are answered, a second
 * advertiser with the same name ends up `kith-2`, an added address is re-announced, and
 * the goodbyes of a stopping `kith up` clear avahi's cache.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../platform/helpers.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['ip', 'dig', 'openssl', 'avahi-daemon', 'avahi-browse', 'avahi-resolve', 'dbus-daemon', 'unshare'];
const root = process.getuid?.() === 0;

describe.skipIf(!root)(`mDNS between two network namespaces (root; ${tools.join(', ')}, python3-zeroconf, python3-dnspython)`, () => {
  it('has every tool it needs', () => {
    expect(tools.filter((t) => !have(t))).toEqual([]);
    expect(spawnSync('/usr/bin/python3', ['-c', 'import zeroconf, dns.message']).status).toBe(0);
  });

  it('announces, resolves, answers legacy queries, renames on conflict, re-announces and says goodbye', () => {
    const dir = tempDir('kith-mdns-');
    const py = (f: string) => path.join(REPO, 'test/e2e/mdns', f);
    const script = path.join(dir, 'scenario.sh');
    const id = `${process.pid % 100000}`;
    writeFileSync(script, `set -u
A=kmdA${id}; B=kmdB${id}; VA=kva${id}; VB=kvb${id}; D=${dir}
ip netns add $A; ip netns add $B
cleanup() { for p in $(cat $D/pids 2>/dev/null); do kill $p 2>/dev/null; done; sleep 1; ip netns del $A; ip netns del $B; }
trap cleanup EXIT
ip link add $VA netns $A type veth peer name $VB netns $B
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A addr add 10.77.0.1/24 dev $VA; ip -n $B addr add 10.77.0.2/24 dev $VB
ip -n $A link set $VA up; ip -n $B link set $VB up
ip -n $A route add 224.0.0.0/4 dev $VA; ip -n $B route add 224.0.0.0/4 dev $VB
cat > $D/bus.conf <<X
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$D/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
X
printf '[server]\\nhost-name=peer-b\\nuse-ipv4=yes\\nuse-ipv6=no\\nallow-interfaces=%s\\nenable-dbus=yes\\n[publish]\\npublish-hinfo=no\\npublish-workstation=no\\n' $VB > $D/avahi.conf
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$D/bus
dbus-daemon --config-file=$D/bus.conf --nofork --nopidfile > $D/dbus.log 2>&1 & echo $! >> $D/pids
for i in $(seq 50); do [ -S $D/bus ] && break; sleep 0.1; done
ip netns exec $B unshare -m --propagation private sh -c "mkdir -p /run/avahi-daemon && mount -t tmpfs none /run/avahi-daemon && exec avahi-daemon -f $D/avahi.conf --no-drop-root --no-chroot --no-rlimits" > $D/avahi.log 2>&1 & echo $! >> $D/pids

ip netns exec $A "${process.execPath}" "${REPO}/installer/kith.ts" up --json --no-build --data $D/a --host 0.0.0.0 --port-base 7300 --hostname kith > $D/up.log 2> $D/up.err & UP=$!; echo $UP >> $D/pids
for i in $(seq 600); do grep -q '"msg":"mdns announced"' $D/up.log && break; sleep 0.1; done
sleep 1.5
echo "UP $(grep -c '"msg":"mdns announced"' $D/up.log)"
echo "SAN $(openssl x509 -in $D/a/data/storage/tls/server.crt -noout -ext subjectAltName | tail -1)"

ip netns exec $B /usr/bin/python3 ${py('zeroconf-resolve.py')} 10.77.0.2 _kith._tcp.local.,_domain._udp.local.,_https._tcp.local. 2 | sed 's/^/ZC /'
ip netns exec $B /usr/bin/python3 ${py('zeroconf-resolve.py')} v6 _kith._tcp.local. 2 | sed 's/^/ZC6 /'
ip netns exec $B avahi-browse -rpt _kith._tcp | sed 's/^/AVAHI /'
ip netns exec $B /usr/bin/python3 ${py('legacy-query.py')} 224.0.0.251 kith.local 10.77.0.2 | sed 's/^/LEGACY-MCAST /'
ip netns exec $B dig -p 5353 @10.77.0.1 kith.local A +norec +time=2 +tries=1 | grep -E '^kith.local|status|WARNING' | sed 's/^/DIG-UNICAST /'
ip netns exec $B dig -p 5353 @224.0.0.251 kith.local A +time=1 +tries=1 | grep -E '^kith.local|status|timed out|unexpected' | sed 's/^/DIG-MCAST /'

# A service restarting does not stop the answers: mDNS lives in the supervisor.
SPID=$(grep '"service":"storage"' $D/up.log | head -1 | sed 's/.*"pid":\\([0-9]*\\).*/\\1/')
kill -9 $SPID
ip netns exec $B /usr/bin/python3 ${py('legacy-query.py')} 224.0.0.251 kith.local 10.77.0.2 | sed "s/^/DURING-RESTART killed=$SPID /"

# The same name from a second host: one of them becomes kith-2.
ip netns exec $B "${process.execPath}" ${REPO}/test/e2e/mdns-advertise.ts --name kith --service _kith._tcp:7999:version=x > $D/adv-b.log 2>&1 & ADV=$!; echo $ADV >> $D/pids
for i in $(seq 100); do grep -q '"announced"' $D/adv-b.log && break; sleep 0.1; done
sed 's/^/B-EVENT /' $D/adv-b.log
ip netns exec $B avahi-resolve -4 -n kith-2.local | sed 's/^/RESOLVE /'
ip netns exec $B avahi-resolve -4 -n kith.local | sed 's/^/RESOLVE /'
kill $ADV; sleep 0.5

# A new address on A's link is announced without a restart.
ip -n $A addr add 10.77.0.11/24 dev $VA
sleep 3
ip netns exec $B /usr/bin/python3 ${py('legacy-query.py')} 224.0.0.251 kith.local 10.77.0.2 | sed 's/^/AFTER-ADD /'

# Goodbyes: once kith up stops, avahi drops kith from its cache at once (TTL 0), not after 75 minutes.
kill $UP; for i in $(seq 100); do kill -0 $UP 2>/dev/null || break; sleep 0.1; done
sleep 1.5
echo "GONE-CHECK $(ip netns exec $B avahi-browse -pt _kith._tcp | grep -c ';kith;' )"
grep -h '"msg":"mdns' $D/up.log | sed 's/^/A-EVENT /'
`);
    const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 150_000 });
    const out = r.stdout;
    console.log(out);
    const lines = (tag: string) => out.split('\n').filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1));
    expect(lines('UP')[0], `${out}\n${r.stderr}`).toBe('1');

    // The storage certificate is issued for the names it is reached by.
    expect(lines('SAN')[0]).toMatch(/DNS:kith\.local, DNS:kith\.home\.arpa, IP Address:10\.77\.0\.1/);

    // python-zeroconf resolves every announced service with its SRV, TXT and address.
    const zc = lines('ZC').map((l) => JSON.parse(l) as { type: string; name: string; server: string; port: number; addresses: string[]; txt: Record<string, string> });
    const byType = (t: string) => zc.find((z) => z.type === t);
    expect(byType('_kith._tcp.local.'), out).toMatchObject({ name: 'kith._kith._tcp.local.', server: 'kith.local.', txt: { version: '0.1.0' } });
    expect(byType('_kith._tcp.local.')!.txt.ca).toMatch(/^[0-9a-f]{64}$/);
    expect(byType('_domain._udp.local.'), out).toMatchObject({ name: 'kith dns._domain._udp.local.', server: 'kith.local.', port: 7311, txt: { version: '0.1.0' } });
    expect(byType('_https._tcp.local.'), out).toMatchObject({ name: 'kith storage._https._tcp.local.', server: 'kith.local.', port: 7302, txt: { version: '0.1.0', path: '/' } });
    expect(byType('_https._tcp.local.')!.txt.certsha256).toMatch(/^[0-9a-f]{64}$/);
    expect(byType('_kith._tcp.local.')!.port).toBe(7299); // the pairing port
    for (const z of zc) expect(z.addresses).toContain('10.77.0.1');

    // Over IPv6 alone (ff02::fb) too, with the link-local address.
    const zc6 = lines('ZC6').map((l) => JSON.parse(l) as { name: string; server: string; addresses: string[] });
    expect(zc6[0], out).toMatchObject({ name: 'kith._kith._tcp.local.', server: 'kith.local.' });
    expect(zc6[0]!.addresses.some((a) => a.startsWith('fe80:')), out).toBe(true);

    // avahi sees it too.
    expect(lines('AVAHI').some((l) => l.startsWith('=;') && l.includes(';kith;_kith._tcp;local;kith.local;10.77.0.1;7299;') && l.includes('"version=0.1.0"')), out).toBe(true);

    // Legacy unicast (RFC 6762 §6.7): to the group from an ephemeral port, answered unicast
    // with the query's ID and a TTL of at most 10; dig to the responder's address likewise.
    const legacy = JSON.parse(lines('LEGACY-MCAST')[0]!) as { from: [string, number]; idMatch: boolean; answers: string[] };
    expect(legacy.from).toEqual(['10.77.0.1', 5353]);
    expect(legacy.idMatch).toBe(true);
    expect(legacy.answers).toEqual(['kith.local. 10 IN A 10.77.0.1']);
    expect(lines('DIG-UNICAST').join('\n'), out).toMatch(/^kith\.local\.\s+10\s+IN\s+A\s+10\.77\.0\.1$/m);

    // Answered right after storage was killed (the supervisor restarts it; mDNS never stopped).
    expect(lines('DURING-RESTART')[0], out).toMatch(/^killed=\d+ \{"from": \["10\.77\.0\.1", 5353\], "idMatch": true/);

    // Two hosts named kith: the later one is renamed kith-2, and both names resolve apart.
    const events = lines('B-EVENT').map((l) => JSON.parse(l) as { kind: string; name?: string; next?: string });
    expect(events.find((e) => e.kind === 'conflict'), out).toMatchObject({ name: 'kith', next: 'kith-2' });
    expect(events.find((e) => e.kind === 'announced'), out).toMatchObject({ name: 'kith-2' });
    expect(lines('RESOLVE')).toEqual(['kith-2.local\t10.77.0.2', 'kith.local\t10.77.0.1']);

    // The added address is announced.
    const after = JSON.parse(lines('AFTER-ADD')[0]!) as { answers: string[] };
    expect(after.answers.sort()).toEqual(['kith.local. 10 IN A 10.77.0.1', 'kith.local. 10 IN A 10.77.0.11']);

    // Goodbye packets cleared avahi's cache.
    expect(lines('GONE-CHECK')[0], out).toBe('0');
  }, 180_000);
});
