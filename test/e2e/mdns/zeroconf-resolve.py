"""Browse the given DNS-SD types (over IPv4 on one address, or IPv6 only with "v6") with python-zeroconf and resolve every instance found.
Prints one JSON line per resolved instance: type, name, server, port, addresses, txt."""
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf

iface, types, wait = sys.argv[1], sys.argv[2].split(','), float(sys.argv[3])
# 'v6': IPv6 transport only (ff02::fb), on every interface
zc = Zeroconf(ip_version=IPVersion.V6Only) if iface == 'v6' else Zeroconf(interfaces=[iface])
found = set()

class L:
    def add_service(self, zc, t, name): found.add((t, name))
    def update_service(self, zc, t, name): found.add((t, name))
    def remove_service(self, zc, t, name): print(json.dumps({"removed": name}), flush=True)

browsers = [ServiceBrowser(zc, t, L()) for t in types]
time.sleep(wait)
for t, name in sorted(found):
    info = zc.get_service_info(t, name, timeout=3000)
    if info is None:
        print(json.dumps({"type": t, "name": name, "unresolved": True}), flush=True)
        continue
    print(json.dumps({"type": t, "name": name, "server": info.server, "port": info.port,
                      "addresses": info.parsed_addresses(),
                      "txt": {k.decode(): (v or b"").decode() for k, v in info.properties.items()}}), flush=True)
zc.close()
