#!/usr/bin/env python3
"""SMTP capture server for fehlzeiten's tests (aiosmtpd).

Listens on 127.0.0.1 with
  * a STARTTLS port (STARTTLS required, AUTH only after STARTTLS),
  * an implicit-TLS port (SMTPS),
  * optionally a plain port (no TLS, no AUTH) for `security = "none"`.
Every accepted message is stored in a Maildir (new/) and logged as one JSON line in
MAILDIR/log.jsonl. Prints "READY ..." on stdout once all listeners are up.

Failure injection by recipient local part: `tempfail*` gets 451 (transient),
`reject*` gets 550 (permanent).

usage: smtp_capture.py --cert C --key K --maildir DIR --starttls-port P --smtps-port P
                       [--plain-port P] [--user U] [--password PW]
"""
import argparse
import json
import logging
import mailbox
import os
import signal
import ssl
import sys
import time
import warnings

warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    print("aiosmtpd missing: run scripts/test, which installs it", file=sys.stderr, flush=True)
    sys.exit(3)

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--maildir", required=True)
ap.add_argument("--starttls-port", type=int, required=True)
ap.add_argument("--smtps-port", type=int, required=True)
ap.add_argument("--plain-port", type=int, default=0)
ap.add_argument("--user", default="testuser")
ap.add_argument("--password", default="testpass")
args = ap.parse_args()

USER = args.user.encode()
PASS = args.password.encode()
# mailbox.Maildir(create=True) does not create tmp/new/cur in an existing directory.
for sub in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
mbox = mailbox.Maildir(args.maildir, create=True)
log_path = os.path.join(args.maildir, "log.jsonl")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER and auth_data.password == PASS
    # auth_data= is needed, or session.auth_data stays None.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    def __init__(self, port):
        self.port = port

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("tempfail"):
            return "451 4.3.0 Temporary failure, try again later"
        if local.startswith("reject"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        mbox.add(content)
        rec = {
            "port": self.port,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None,
            "tls_cipher": (server.transport.get_extra_info("cipher") or [None])[0],
            "size": len(content or b""),
            "time": time.time(),
        }
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return "250 Message accepted for delivery"


def tls_context():
    c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    c.load_cert_chain(args.cert, args.key)
    return c


common = dict(hostname="127.0.0.1", authenticator=authenticator, auth_required=True)
controllers = [
    Controller(Handler(args.starttls_port), port=args.starttls_port, tls_context=tls_context(),
               require_starttls=True, auth_require_tls=True, **common),
    # aiosmtpd 1.4 counts only STARTTLS as TLS for auth_require_tls; the SMTPS listener is TLS
    # from the first byte, so AUTH without that flag is safe there.
    Controller(Handler(args.smtps_port), port=args.smtps_port, ssl_context=tls_context(),
               auth_require_tls=False, **common),
]
if args.plain_port:
    controllers.append(Controller(Handler(args.plain_port), hostname="127.0.0.1",
                                  port=args.plain_port, auth_required=False))
for c in controllers:
    c.start()
print(f"READY starttls=127.0.0.1:{args.starttls_port} smtps=127.0.0.1:{args.smtps_port} "
      f"plain=127.0.0.1:{args.plain_port} maildir={args.maildir}", flush=True)

stop = False


def _stop(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
while not stop:
    time.sleep(0.2)
for c in controllers:
    c.stop()
