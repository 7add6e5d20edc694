#!/usr/bin/python3
"""Verify every DKIM-Signature of a message with python3-dkim (dkimpy), an independent
implementation. argv: MESSAGE_FILE RECORDS_JSON where RECORDS_JSON maps a DNS name
('sel._domainkey.example.org') to its TXT text, as the DNS service serves it (dig).
Prints one JSON line per signature: {"selector", "algorithm", "ok"}."""
import json, re, sys
import dkim

msg = open(sys.argv[1], 'rb').read()
records = json.loads(sys.argv[2])

def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip('.').lower(), '').encode()

d = dkim.DKIM(msg)
sigs = [h for h in d.headers if h[0].lower() == b'dkim-signature']
for i, (_, value) in enumerate(sigs):
    tags = dict((k.strip(), v.strip()) for k, v in (t.split('=', 1) for t in re.sub(rb'\s+', b'', value).decode().split(';') if '=' in t))
    try:
        ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
    except Exception as e:
        ok = False
    print(json.dumps({'selector': tags.get('s'), 'algorithm': tags.get('a'), 'domain': tags.get('d'), 'ok': bool(ok)}))
