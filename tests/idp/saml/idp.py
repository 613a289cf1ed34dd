"""A real SAML 2.0 identity provider for Kluis's SAML tests: PyPI pysaml2's saml2.server.Server.

Started by crates/kluis-testkit/src/saml.rs. It generates two throwaway RSA keys with
self-signed certificates (the IdP's, and an "other" one for the foreign-signature case),
prints `kluis-test-saml-idp: ready <json>` with its URLs and certificate, and serves
HTTP on 127.0.0.1 until its stdin closes.

GET /sso?SAMLRequest=...&RelayState=...  (HTTP-Redirect binding) answers, for an automatically
signed-in test user, an HTML page with the auto-submitting HTTP-POST form (SAMLResponse,
RelayState) addressed to the request's AssertionConsumerServiceURL. Test-only query parameters
choose the user and what the IdP gets wrong:
  email, subject, name          the user (defaults: alice@acme.test, email, Alice)
  variant                       "" (signed assertion), sign_response, sign_both, unsigned,
                                wrong_audience, wrong_recipient, wrong_destination
                                (signed Response addressed elsewhere), expired, other_key,
                                unsolicited (no InResponseTo)
"""

import base64
import datetime
import html
import json
import os
import ssl
import sys
import urllib.request
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def ensure_sp(srv, entity_id, acs):
    """pysaml2 wants the SP's metadata. Kluis's entity id is its metadata URL on 127.0.0.1:
    fetch it from there (the test server's certificate is self-signed). Any other SP (the
    wrong-audience variant) gets a minimal descriptor."""
    try:
        srv.metadata[entity_id]
        return
    except KeyError:
        pass
    if entity_id.startswith(("https://127.0.0.1:", "https://localhost:")):
        ctx = ssl._create_unverified_context()
        xml = urllib.request.urlopen(entity_id, context=ctx, timeout=10).read().decode()
    else:
        xml = (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="%s">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            '<md:AssertionConsumerService Binding="%s" Location="%s" index="0"/>'
            "</md:SPSSODescriptor></md:EntityDescriptor>"
        ) % (html.escape(entity_id), BINDING_HTTP_POST, html.escape(acs))
    srv.metadata.load("inline", xml)


def keypair(directory, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kluis-test-idp-" + name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file = os.path.join(directory, name + "-key.pem")
    cert_file = os.path.join(directory, name + "-cert.pem")
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_file, "wb") as f:
        f.write(pem)
    return key_file, cert_file, pem.decode()


def server(base, key_file, cert_file, lifetime_minutes):
    conf = IdPConfig()
    conf.load(
        {
            "entityid": base + "/idp",
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(base + "/sso", BINDING_HTTP_REDIRECT)]
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "attribute_restrictions": None,
                            "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": key_file,
            "cert_file": cert_file,
            "metadata": {},
            "accepted_time_diff": 60,
        }
    )
    return Server(config=conf)


def main():
    directory = tempfile.mkdtemp(prefix="kluis-saml-idp-")
    key, cert, cert_pem = keypair(directory, "idp")
    other_key, other_cert, other_pem = keypair(directory, "other")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), None)
    base = "http://127.0.0.1:%d" % httpd.server_address[1]
    idp = server(base, key, cert, 15)
    other = server(base, other_key, other_cert, 15)
    expired = server(base, key, cert, -30)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body, ctype="text/plain"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype + "; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/sso":
                return self.answer(404, "not found")
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                req = idp.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
            except Exception as e:  # noqa: BLE001 - the test wants to see why
                return self.answer(400, "bad AuthnRequest: %r" % e)
            msg = req.message
            acs = msg.assertion_consumer_service_url
            sp = msg.issuer.text
            variant = q.get("variant", "")
            email = q.get("email", "alice@acme.test")
            subject = q.get("subject", email)
            srv = {"other_key": other, "expired": expired}.get(variant, idp)
            audience = "https://evil.example/sp" if variant == "wrong_audience" else sp
            try:
                ensure_sp(srv, audience, acs)
            except Exception as e:  # noqa: BLE001
                return self.answer(502, "SP metadata: %r" % e)
            resp = srv.create_authn_response(
                identity={"mail": [email], "displayName": [q.get("name", "Alice")]},
                in_response_to=None if variant == "unsolicited" else msg.id,
                destination=(
                    "https://evil.example/acs"
                    if variant in ("wrong_recipient", "wrong_destination")
                    else acs
                ),
                sp_entity_id=audience,
                name_id=saml.NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
                authn={
                    "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
                },
                sign_assertion=variant not in ("unsigned", "sign_response", "wrong_destination"),
                sign_response=variant in ("sign_response", "sign_both", "wrong_destination"),
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
            b64 = base64.b64encode(str(resp).encode()).decode()
            page = (
                '<!doctype html><html><body onload="document.forms[0].submit()">'
                '<form method="post" action="%s">'
                '<input type="hidden" name="SAMLResponse" value="%s"/>'
                '<input type="hidden" name="RelayState" value="%s"/>'
                "</form></body></html>"
            ) % (html.escape(acs), b64, html.escape(q.get("RelayState", "")))
            return self.answer(200, page, "text/html")

    httpd.RequestHandlerClass = Handler
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    info = {
        "entity_id": base + "/idp",
        "sso_url": base + "/sso",
        "cert_pem": cert_pem,
        "other_cert_pem": other_pem,
        "post_binding": BINDING_HTTP_POST,
    }
    print("kluis-test-saml-idp: ready " + json.dumps(info), flush=True)
    # Stop when the test process (our stdin's writer) goes away.
    sys.stdin.read()
    httpd.shutdown()


if __name__ == "__main__":
    main()
