"""A real SMTP server for Kluis tests (aiosmtpd).

Writes each received message as JSON (envelope, decoded parts, raw text, whether the session
was encrypted) into --dir, one file per message, atomically (tmp + rename). Prints READY
once listening. With --cert/--key it offers STARTTLS and refuses mail without it.
"""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Mailboxes starting with "weiger" do not exist: a permanent refusal that, like real
        # relays, quotes the address.
        if address.startswith("weiger"):
            return "550 5.1.1 <%s> no such mailbox" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype in ("text/plain", "text/html") and ctype not in parts:
                parts[ctype] = part.get_content()
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "raw": raw.decode("utf-8", "replace"),
        }
        name = "%d-%06d" % (int(time.time() * 1000), self.count)
        tmp = os.path.join(self.directory, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    a = ap.parse_args()
    # aiosmtpd logs a deprecation warning of its own on every AUTH; keep test output clean.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    kwargs = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    if a.user:
        with open(a.password_file, encoding="utf-8") as f:
            password = f.read().strip()

        def check(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == a.user.encode()
                and auth_data.password == password.encode()
            )
            return AuthResult(success=ok)

        # AUTH only after STARTTLS (aiosmtpd's default), and no mail without it.
        kwargs.update({"authenticator": check, "auth_required": True})
    c = Controller(Saver(a.dir), hostname="127.0.0.1", port=a.port, **kwargs)
    c.start()
    print("READY", flush=True)
    try:
        # Until the test kills us, or our parent (the test process) goes away.
        while os.getppid() != 1:
            time.sleep(0.2)
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())
