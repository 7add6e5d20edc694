/**
 * The SMTP listeners (RFC 5321 with ESMTP SIZE (RFC 1870), PIPELINING (RFC 2920),
 * 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034, codes from
 * RFC 3463), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954)) on smtp-server:
 *
 *   mx           port 25: mail for the owner's domains (aliases); relaying refused
 *   submission   port 587: STARTTLS, then AUTH, then mail as one of the user's addresses
 *   submissions  port 465: the same over implicit TLS (RFC 8314)
 *
 * Limits (size, recipients, connections, commands before DATA, idle time, header size)
 * are read from the live config on every use. The body streams to the queue file
 * (durable before the 250), to the DKIM signer and to the SPF/DKIM/DMARC/ARC verifier at
 * once; nothing holds a whole message in memory.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../platform/log.ts';
import type { Metrics } from '../../platform/metrics.ts';
import type { ServerTls } from '../../platform/pki/server-tls.ts';
import type { MailConfig } from './config.ts';
import type { DkimKey } from './dkim.ts';
import { startSigning } from './dkim.ts';
import { MessageScanner } from './scan.ts';
import { certificateUser, decideRcpt, isOurDomain, senderAllowed, splitAddress } from './routing.ts';
import type { MailQueue } from './queue/queue.ts';
import type { Spool } from './queue/spool.ts';
import { startVerifying } from './verify.ts';

export type ListenerKind = 'mx' | 'submission' | 'submissions';

export interface SmtpDeps {
  config: () => MailConfig;
  spool: Spool;
  queue: MailQueue;
  tls: ServerTls | undefined;
  keys: () => DkimKey[];
  /** Check a user's password (config hashes and the provisioned owner token). */
  checkPassword: (user: string, password: string) => Promise<boolean>;
  /** DNS lookups for SPF/DKIM/DMARC/ARC (the kith DNS service). */
  resolver: (name: string, type: string) => Promise<unknown>;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** Revoked client certificates (platform/pki/revocation.ts, kept live by the supervisor). */
  revoked?: { isRevoked(serial: string): boolean };
  /** The clock is synchronised: DKIM signing now; else the message is queued to be signed later. */
  clockSynchronised: () => boolean;
}

const reply = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
/** Longest command line taken (RFC 5321 §4.5.3.1.4 asks for at least 512). */
const MAX_COMMAND = 4096;

/** TLS Web Client Authentication (RFC 5280 §4.2.1.12): the purpose paired devices' certificates carry. */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** A client certificate from the appliance CA, as presented in this session's TLS handshake. */
interface PeerCert {
  serial: string;
  subject: { CN?: string; OU?: string };
}

interface Tx {
  targets: Map<string, string>; // final recipient → the address the client gave
}

export interface SmtpListener {
  server: SMTPServer;
  kind: ListenerKind;
  listen(host: string, port: number): Promise<number>;
  applyLimits(): void;
  close(): Promise<void>;
}

export function createSmtpListener(kind: ListenerKind, deps: SmtpDeps): SmtpListener {
  const { log } = deps;
  const received = deps.metrics.counter('kith_mail_received_total', 'Messages accepted (250) by listener.').with({ listener: kind });
  const refused = deps.metrics.counter('kith_mail_refused_total', 'Replies refusing a command or message, by listener and code.');
  const tx = new WeakMap<SMTPServerSession, Tx>();
  const limits = () => deps.config().settings.limits;
  const hostname = () => deps.config().settings.hostname;
  const submission = kind !== 'mx';
  const peerCert = new WeakMap<SMTPServerSession, PeerCert>();

  /**
   * Who the session is: the user of AUTH (PLAIN, LOGIN or EXTERNAL), else the user a
   * client certificate from the appliance CA maps to (certificateUser), looked up now so a
   * config change or a revocation applies to sessions already open.
   */
  const identity = (session: SMTPServerSession): { user: string; via: 'password' | 'certificate' } | { revoked: true } | undefined => {
    if (session.user) return { user: String(session.user), via: 'password' };
    const c = peerCert.get(session);
    if (!c) return undefined;
    if (deps.revoked?.isRevoked(c.serial)) return { revoked: true };
    const user = certificateUser(deps.config().settings, c.subject);
    return user ? { user, via: 'certificate' } : undefined;
  };

  const refuse = (code: number, text: string) => {
    refused.inc({ listener: kind, code: String(code) });
    return reply(code, text);
  };

  const options: SMTPServerOptions = {
    name: hostname(),
    banner: 'kith ESMTP',
    secure: kind === 'submissions',
    ...(deps.tls ? { key: deps.tls.key, cert: deps.tls.cert } : {}),
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    disableReverseLookup: true,
    authMethods: submission ? ['PLAIN', 'LOGIN', 'EXTERNAL'] : ['PLAIN', 'LOGIN'],
    // Submission asks for a client certificate (never requires one): a paired device's,
    // from the appliance CA, logs in without a password (RFC 4422 EXTERNAL, or implicitly).
    ...(submission && deps.tls ? { requestCert: true, rejectUnauthorized: false, ca: deps.tls.ca } : {}),
    allowInsecureAuth: false,
    // Submission needs an identity, checked at MAIL (onMailFrom): AUTH, or a paired device's certificate.
    authOptional: true,
    disabledCommands: [...(submission ? [] : ['AUTH']), ...(deps.tls && kind !== 'submissions' ? [] : ['STARTTLS'])],
    maxAllowedUnauthenticatedCommands: false as unknown as number,
    logger: false,
    maxCommandLength: MAX_COMMAND,

    onSecure(socket, session, cb) {
      if (!submission) return cb();
      const tlsSocket = socket as unknown as TLSSocket;
      if (!tlsSocket.authorized) return cb(); // none, or not from the appliance CA: AUTH as usual
      const peer = tlsSocket.getPeerCertificate();
      if (!peer?.serialNumber || !(peer.ext_key_usage ?? []).includes(CLIENT_AUTH)) return cb();
      const subject = { ...(typeof peer.subject?.CN === 'string' ? { CN: peer.subject.CN } : {}), ...(typeof peer.subject?.OU === 'string' ? { OU: peer.subject.OU } : {}) };
      if (deps.revoked?.isRevoked(peer.serialNumber)) {
        log.info('revoked client certificate refused', { listener: kind, ip: session.remoteAddress, device: subject.OU, serial: peer.serialNumber });
        return cb(refuse(535, '5.7.8 This client certificate has been revoked'));
      }
      peerCert.set(session, { serial: peer.serialNumber, subject });
      cb();
    },

    onAuth(auth: SMTPServerAuthentication, session, cb) {
      if (!submission) return cb(refuse(503, '5.5.1 AUTH is for ports 587 and 465'));
      if (!session.secure) return cb(refuse(538, '5.7.11 Encryption required: STARTTLS first'));
      const user = (auth.username ?? '').trim();
      void deps.checkPassword(user, auth.password ?? '').then((ok) => {
        if (ok) return cb(null, { user });
        log.info('authentication failed', { listener: kind, user: user.slice(0, 64), ip: session.remoteAddress });
        return cb(refuse(535, '5.7.8 Authentication credentials invalid'));
      }, (err: Error) => cb(refuse(454, `4.7.0 Temporary authentication failure: ${err.message}`)));
    },

    onMailFrom(address, session, cb) {
      tx.set(session, { targets: new Map() });
      const from = address.address;
      if (submission) {
        const who = identity(session);
        if (who && 'revoked' in who) return cb(refuse(535, '5.7.8 This client certificate has been revoked'));
        if (!who) return cb(refuse(530, '5.7.0 Authentication required'));
        if (!senderAllowed(deps.config().settings, who.user, from)) return cb(refuse(553, `5.7.1 <${from}>: Sender address not owned by user ${who.user}`));
      }
      // On port 25 any sender is taken here: mail claiming one of our domains from outside is judged by SPF/DMARC at DATA.
      cb();
    },

    onRcptTo(address, session, cb) {
      const t = tx.get(session) ?? { targets: new Map() };
      tx.set(session, t);
      const who = submission ? identity(session) : undefined;
      const d = decideRcpt(deps.config().settings, address.address, !!who && 'user' in who);
      if (!d.ok) {
        log.info('recipient refused', { listener: kind, ip: session.remoteAddress, from: session.envelope.mailFrom && session.envelope.mailFrom.address, to: address.address, code: d.code });
        return cb(refuse(d.code, d.message));
      }
      for (const target of d.targets) if (!t.targets.has(target)) t.targets.set(target, address.address);
      cb();
    },

    onData(stream: SMTPServerDataStream, session, cb) {
      void acceptData(stream, session, cb);
    },
  };

  type Conn = {
    session: SMTPServerSession;
    send(code: number, data?: unknown, context?: unknown): void;
    close(): void;
    _onCommand(cmd: Buffer, cb: () => void): void;
    init(): void;
    _setListeners(cb: () => void): void;
    connectionReady(): void;
  };

  /**
   * Per-connection hooks smtp-server has no option for: our own enhanced status codes
   * (an error text starting '5.7.1 ' is sent as is, not with the library's default for
   * the reply code), and the limit on commands before DATA (421 4.7.0, then close).
   */
  function hookConnection(conn: Conn) {
    const send = conn.send.bind(conn);
    conn.send = (code, data, context) => {
      if (typeof data === 'string' && ENHANCED.test(data)) return send(code, data, false);
      // The parser gives up on an over-long line (it cannot find the next command): say
      // so with RFC 5321 §4.2.2's 500 ("command line too long"), then close.
      if (code === 421 && typeof data === 'string' && data.includes('Command line too long')) {
        refused.inc({ listener: kind, code: '500' });
        send(500, `5.5.2 Line too long: at most ${MAX_COMMAND} octets per command line`, false);
        return conn.close();
      }
      return send(code, data, context);
    };
    const onCommand = conn._onCommand.bind(conn);
    let count = 0;
    conn._onCommand = (cmd, cb) => {
      const verb = cmd.toString('latin1', 0, 8).split(' ')[0]!.toUpperCase().trim();
      if (verb === 'DATA' || verb === 'BDAT') count = 0;
      else if (++count > limits().commandsBeforeData) {
        refused.inc({ listener: kind, code: '421' });
        send(421, `4.7.0 ${hostname()} Too many commands before DATA (limit ${limits().commandsBeforeData}), closing`, false);
        conn.close();
        return cb();
      }
      if (submission && verb === 'AUTH' && /^AUTH\s+EXTERNAL(?:\s|$)/i.test(cmd.toString('latin1', 0, 600))) {
        authExternal(conn, cmd.toString('latin1', 0, 600).trim().split(/\s+/)[2]);
        return cb();
      }
      onCommand(cmd, cb);
    };
  }

  /**
   * AUTH EXTERNAL (RFC 4422 appendix A, RFC 4954): the identity is the client certificate's;
   * an authorization identity, when given (base64), must be that user. smtp-server has no
   * EXTERNAL, so it is answered here.
   */
  function authExternal(conn: Conn, initial: string | undefined) {
    const say = (code: number, text: string) => {
      if (code >= 400) refused.inc({ listener: kind, code: String(code) });
      conn.send(code, text, false);
    };
    const session = conn.session;
    if (!session.secure) return say(538, '5.7.11 Encryption required: STARTTLS first');
    if (session.user) return say(503, '5.5.1 Already authenticated');
    const who = identity(session);
    if (who && 'revoked' in who) return say(535, '5.7.8 This client certificate has been revoked');
    if (!who) return say(535, '5.7.8 No client certificate from this appliance for a mail user: pair the device (kith pair) or use AUTH PLAIN');
    let authzid = '';
    if (initial && initial !== '=') {
      authzid = Buffer.from(initial, 'base64').toString('utf8');
      if (authzid !== who.user) return say(535, `5.7.8 This certificate cannot act as ${authzid.slice(0, 64)}`);
    }
    session.user = who.user;
    log.info('authenticated by client certificate', { listener: kind, user: who.user, device: peerCert.get(session)?.subject.OU, ip: session.remoteAddress });
    say(235, '2.7.0 Authentication successful');
  }

  async function acceptData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) {
    const cfg = deps.config();
    const s = cfg.settings;
    const t = tx.get(session);
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const args = (session.envelope.mailFrom && (session.envelope.mailFrom as { args?: Record<string, string | boolean> }).args) || {};
    const declared8 = String(args.BODY ?? '').toUpperCase() === '8BITMIME' || args.SMTPUTF8 === true || String(args.SMTPUTF8 ?? '') !== '';
    const smtputf8 = args.SMTPUTF8 !== undefined && args.SMTPUTF8 !== false;
    const now = deps.now();
    const writer = deps.spool.writer(now);
    // Submission signs as the sender's domain; forwarded inbound mail as the alias's domain.
    const signDomain = submission ? splitAddress(from).domain : splitAddress(session.envelope.rcptTo[0]?.address ?? '').domain;
    const ours = isOurDomain(s, signDomain);
    // A signature's t= from an unset clock would be wrong (and could fail verification):
    // the queue holds such a message and signs it once the clock is synchronised.
    const holdToSign = ours && deps.keys().length > 0 && !deps.clockSynchronised();
    const signer = ours && !holdToSign ? await startSigning(deps.keys(), signDomain) : undefined;
    const verifier = !submission && s.inbound.verify ? startVerifying({ ip: session.remoteAddress, helo: session.hostNameAppearsAs, sender: from, mta: s.hostname, resolver: deps.resolver }) : undefined;
    const scanner = new MessageScanner({ headerBytes: s.limits.headerBytes, eightBitAllowed: declared8 });
    let failure: Error | undefined;

    stream.on('data', (chunk: Buffer) => {
      if (failure) return;
      const out = scanner.push(chunk);
      if (scanner.error) {
        failure = refuse(scanner.error.code, scanner.error.text);
        return;
      }
      if (out.length === 0) return;
      const wait = writer.write(out);
      signer?.write(out);
      verifier?.write(out);
      if (wait) {
        stream.pause();
        wait.then(() => stream.resume(), (err: Error) => {
          failure = refuse(451, `4.3.0 Could not queue the message: ${err.message}`);
          stream.resume();
        });
      }
    });
    stream.once('end', () => {
      void (async () => {
        const tail = scanner.end();
        if (!failure && scanner.error) failure = refuse(scanner.error.code, scanner.error.text);
        if (!failure && tail.length > 0) {
          void writer.write(tail);
          signer?.write(tail);
          verifier?.write(tail);
        }
        if (stream.sizeExceeded) failure = refuse(552, `5.3.4 Message too big: the limit is ${s.limits.messageBytes} bytes`);
        if (!failure && (!t || t.targets.size === 0)) failure = refuse(503, '5.5.1 No valid recipients');
        if (failure) {
          signer?.abort();
          verifier?.abort();
          await writer.abort();
          return cb(failure);
        }
        signer?.end();
        verifier?.end();
        const [sig, auth] = await Promise.all([
          signer?.done.catch((err: Error) => (log.warn('DKIM signing failed; sending unsigned', { error: err.message }), '')) ?? '',
          verifier?.done.catch((err: Error) => (log.warn('verification failed', { error: err.message }), undefined)),
        ]);
        if (auth?.reject && s.inbound.enforceDmarcReject) {
          await writer.abort();
          log.info('refused by DMARC policy', { from, ip: session.remoteAddress, domain: auth.reject });
          return cb(refuse(550, `5.7.1 Message refused: DMARC policy of ${auth.reject} is reject and it failed`));
        }
        const who = submission ? identity(session) : undefined;
        const user = who && 'user' in who ? who.user : undefined;
        const proto = `${session.transmissionType || 'ESMTP'}`;
        const receivedHdr = `Received: from ${clean(session.hostNameAppearsAs || 'unknown')} ([${session.remoteAddress}])\r\n\tby ${s.hostname} (kith) with ${proto} id ${writer.id}${t!.targets.size === 1 ? `\r\n\tfor <${[...t!.targets.keys()][0]}>` : ''};\r\n\t${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`;
        try {
          const env = await writer.commit({
            from,
            rcpts: [...t!.targets].map(([to, orcpt]) => ({ to, orcpt })),
            prepend: (sig || '') + (auth?.headers ?? '') + receivedHdr,
            received: now,
            client: { ip: session.remoteAddress, helo: session.hostNameAppearsAs || '', ...(user ? { user } : {}) },
            ...(scanner.saw8bit ? { eightBit: true } : {}),
            ...(smtputf8 ? { smtputf8: true } : {}),
            ...(holdToSign ? { signAs: signDomain } : {}),
          });
          received.inc();
          log.info('queued', { id: env.id, listener: kind, from, to: env.rcpts.map((r) => r.to), bytes: env.bytes, user: env.client.user });
          deps.queue.add(env.id, env);
          cb(null, `2.0.0 Ok: queued as ${env.id}`);
        } catch (err) {
          await writer.abort();
          log.error('could not queue a message', { error: err });
          cb(refuse(451, '4.3.0 Could not queue the message, try again later'));
        }
      })();
    });
  }

  const server = new SMTPServer(options);
  server.on('error', (err) => log.warn('smtp error', { listener: kind, error: (err as Error).message }));
  // smtp-server registers each new connection here just before its init(): our hooks go
  // on then, and init greets at once instead of after its fixed 100 ms early-talker pause
  // (Postfix has none by default; it capped bench/mail at 10 connections/s per session).
  const connections = (server as unknown as { connections: Set<Conn> }).connections;
  const add = connections.add.bind(connections);
  Object.defineProperty(connections, 'add', {
    value: (conn: Conn) => {
      hookConnection(conn);
      conn.init = () => conn._setListeners(() => {
        if (server.options.maxClients && connections.size > server.options.maxClients) {
          refused.inc({ listener: kind, code: '421' });
          return conn.send(421, `4.7.0 ${hostname()} Too many connections (limit ${server.options.maxClients}), try again in a moment`, false);
        }
        conn.connectionReady();
      });
      return add(conn);
    },
  });

  const applyLimits = () => {
    const l = limits();
    const o = server.options as SMTPServerOptions & { maxRecipients?: number };
    o.size = l.messageBytes;
    o.maxClients = l.connections;
    o.socketTimeout = l.idleSeconds * 1000;
    o.maxRecipients = l.recipients;
    o.name = hostname();
  };
  applyLimits();

  return {
    server,
    kind,
    applyLimits,
    listen: (host, port) => new Promise((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, host, () => {
        server.server.removeListener('error', reject);
        resolve((server.server.address() as { port: number }).port);
      });
    }),
    close: () => new Promise((resolve) => {
      for (const c of (server as unknown as { connections: Set<{ _socket?: Socket }> }).connections) c._socket?.destroy();
      server.close(() => resolve());
    }),
  };
}

const clean = (s: string) => s.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);
