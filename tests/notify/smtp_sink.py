"""A real SMTP server on loopback for tests/notify.rs (aiosmtpd).

usage: smtp_sink.py OUT PORT starttls|implicit CERT KEY [USER:PASSWORD]

Writes one JSON line per message received to OUT: {"from", "to", "data", "tls",
"auth"}. In `starttls` mode STARTTLS is required before MAIL; with USER:PASSWORD
AUTH is required too. Prints `ready` once listening; stops when stdin closes.
"""
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

out, port, mode, cert, key = sys.argv[1:6]
creds = sys.argv[6] if len(sys.argv) > 6 else None


class Sink:
    async def handle_DATA(self, server, session, envelope):
        rec = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": getattr(session, "ssl", None) is not None or mode == "implicit",
            "auth": session.authenticated,
        }
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    user, password = creds.split(":", 1)
    ok = (
        auth_data.login.decode() == user and auth_data.password.decode() == password
    )
    return AuthResult(success=ok)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
kwargs = {}
if creds:
    kwargs = {"authenticator": authenticator, "auth_required": True}
if mode == "starttls":
    c = Controller(Sink(), hostname="127.0.0.1", port=int(port), tls_context=ctx,
                   require_starttls=True, **kwargs)
else:
    c = Controller(Sink(), hostname="127.0.0.1", port=int(port), ssl_context=ctx, **kwargs)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
