#!/usr/bin/python3
"""An SMTP server for the mail tests, on aiosmtpd (Debian's python3-aiosmtpd): the
smarthost or a remote MX. Each accepted message is written to DIR/<n>.eml with its
envelope in DIR/<n>.json. Recipients decide the answer:
  temp<K>-...@   451 4.3.0 for the first K tries of that address (K defaults to 2)
  perm...@       550 5.1.1
  anything else  250
Options: --tls CERT KEY (offer STARTTLS), --auth USER:PASS (require AUTH PLAIN/LOGIN).
Prints "ready PORT" when listening."""
import argparse, asyncio, json, os, re, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

p = argparse.ArgumentParser()
p.add_argument('--port', type=int, default=0)
p.add_argument('--dir', required=True)
p.add_argument('--tls', nargs=2)
p.add_argument('--auth')
a = p.parse_args()
os.makedirs(a.dir, exist_ok=True)
tries = {}
count = [0]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0].lower()
        m = re.match(r'^temp(\d*)', local)
        if m:
            k = int(m.group(1) or 2)
            tries[address] = tries.get(address, 0) + 1
            if tries[address] <= k:
                return '451 4.3.0 try again later (test sink)'
        if local.startswith('perm'):
            return '550 5.1.1 no such user here (test sink)'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        count[0] += 1
        n = count[0]
        base = os.path.join(a.dir, '%06d' % n)
        with open(base + '.eml.tmp', 'wb') as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + '.eml.tmp', base + '.eml')
        # The .json is what the tests look for: renamed into place, never seen half-written.
        with open(base + '.json.tmp', 'w') as f:
            json.dump({'from': envelope.mail_from, 'to': envelope.rcpt_tos, 'tls': session.ssl is not None, 'auth': bool(getattr(session, 'authenticated', False))}, f)
        os.rename(base + '.json.tmp', base + '.json')
        return '250 2.0.0 OK queued as %d' % n

def authenticator(server, session, envelope, mechanism, auth_data):
    user, pw = a.auth.split(':', 1)
    ok = auth_data.login.decode() == user and auth_data.password.decode() == pw
    return AuthResult(success=ok)

kw = {}
if a.tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.tls[0], a.tls[1])
    kw['tls_context'] = ctx
    kw['require_starttls'] = False
if a.auth:
    kw['authenticator'] = authenticator
    kw['auth_required'] = True
    kw['auth_require_tls'] = bool(a.tls)
ctl = Controller(Handler(), hostname='127.0.0.1', port=a.port, data_size_limit=64 * 1024 * 1024, decode_data=False, enable_SMTPUTF8=True, ready_timeout=10, **kw)
ctl.start()
print('ready', ctl.port if hasattr(ctl, 'port') else a.port, flush=True)
try:
    asyncio.get_event_loop().run_forever() if False else sys.stdin.read()
finally:
    ctl.stop()
