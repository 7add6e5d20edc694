"""A legacy unicast mDNS query (RFC 6762 §6.7) with dnspython: sent from an ephemeral port
to 224.0.0.251:5353 (or a given address), the reply read from whichever address sends it.
Prints one JSON line: from, id match, answers (name ttl class type data)."""
import json, socket, sys, time
import dns.message, dns.query

server, name, iface = sys.argv[1], sys.argv[2], sys.argv[3]
q = dns.message.make_query(name, "A")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
s.bind((iface, 0))
dns.query.send_udp(s, q, (server, 5353))
try:
    r, _t, source = dns.query.receive_udp(s, None, expiration=time.time() + 3, ignore_unexpected=True)
except Exception as e:
    print(json.dumps({"error": repr(e)}))
    sys.exit(0)
print(json.dumps({"from": list(source), "idMatch": r.id == q.id,
                  "answers": [l for rrset in r.answer for l in rrset.to_text().splitlines()]}))
