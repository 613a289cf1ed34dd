#!/usr/bin/env python3
"""A software WebAuthn authenticator for Kluis's passkey tests, built on PyPI soft-webauthn.

Reads one JSON request on stdin, writes one JSON answer on stdout:

  {"op": "create", "state": FILE, "origin": URL, "options": {"publicKey": {...}}}
      -> the PublicKeyCredential of navigator.credentials.create(), WebAuthn JSON
         (binary fields base64url, as browsers' toJSON() and webauthn-rs use)
  {"op": "get", "state": FILE, "origin": URL, "options": {"publicKey": {...}}}
      -> the PublicKeyCredential of navigator.credentials.get()
  {"op": "rekey", "state": FILE}
      -> {} ; replaces the private key but keeps the credential id (an impostor key)

`options` is exactly what the server returned (binary fields base64url). The device (one
credential: id, P-256 private key, RP id, user handle, sign counter) is kept in the state file
between calls, so a test can also copy the file to clone the authenticator.

soft-webauthn 0.1.4 sets only the "user present" flag. Passkeys require user verification
(webauthn-rs refuses an assertion without it), so this wrapper reports UV like a platform
authenticator that checked a PIN or fingerprint: on create by setting the UV bit in the
attestation's authenticator data (attestation "none" signs nothing), on get by producing the
assertion with flags UP|UV from the device's own key (the signature covers the flags).
"""

import base64
import json
import sys
from struct import pack

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.utils import sha256
from soft_webauthn import SoftWebauthnDevice

FLAG_UP = 0x01
FLAG_UV = 0x04


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


class VerifyingDevice(SoftWebauthnDevice):
    """soft-webauthn's device, reporting user verification."""

    def create(self, options, origin):
        cred = super().create(options, origin)
        att = cbor.decode(cred["response"]["attestationObject"])
        auth_data = bytearray(att["authData"])
        auth_data[32] |= FLAG_UV
        att["authData"] = bytes(auth_data)
        cred["response"]["attestationObject"] = cbor.encode(att)
        return cred

    def get(self, options, origin):
        if self.rp_id != options["publicKey"]["rpId"]:
            raise ValueError("Requested rpID does not match current credential")
        self.sign_count += 1
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": b64e(options["publicKey"]["challenge"]),
                "origin": origin,
                "crossOrigin": False,
            }
        ).encode("utf-8")
        auth_data = (
            sha256(self.rp_id.encode("ascii"))
            + bytes([FLAG_UP | FLAG_UV])
            + pack(">I", self.sign_count)
        )
        signature = self.private_key.sign(
            auth_data + sha256(client_data), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64e(self.credential_id),
            "rawId": self.credential_id,
            "response": {
                "authenticatorData": auth_data,
                "clientDataJSON": client_data,
                "signature": signature,
                "userHandle": self.user_handle,
            },
            "type": "public-key",
        }


def load(path):
    dev = VerifyingDevice()
    try:
        with open(path) as f:
            s = json.load(f)
    except FileNotFoundError:
        return dev
    dev.credential_id = b64d(s["credential_id"])
    dev.private_key = serialization.load_pem_private_key(
        s["private_key"].encode("ascii"), password=None
    )
    dev.rp_id = s["rp_id"]
    dev.user_handle = b64d(s["user_handle"])
    dev.sign_count = s["sign_count"]
    return dev


def save(dev, path):
    pem = dev.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    with open(path, "w") as f:
        json.dump(
            {
                "credential_id": b64e(dev.credential_id),
                "private_key": pem,
                "rp_id": dev.rp_id,
                "user_handle": b64e(dev.user_handle),
                "sign_count": dev.sign_count,
            },
            f,
        )


def decode_options(options):
    """The server's JSON options with their binary fields as bytes (what the browser does)."""
    pk = dict(options["publicKey"])
    pk["challenge"] = b64d(pk["challenge"])
    if "user" in pk:
        pk["user"] = dict(pk["user"], id=b64d(pk["user"]["id"]))
    return {"publicKey": pk}


def encode(cred):
    """The credential as WebAuthn JSON (binary fields base64url)."""
    resp = {
        k: (b64e(v) if isinstance(v, (bytes, bytearray)) else v)
        for k, v in cred["response"].items()
        if v is not None
    }
    return {
        "id": b64e(cred["rawId"]),
        "rawId": b64e(cred["rawId"]),
        "type": "public-key",
        "response": resp,
        "clientExtensionResults": {},
    }


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    dev = load(req["state"])
    if op == "create":
        out = encode(dev.create(decode_options(req["options"]), req["origin"]))
    elif op == "get":
        if dev.credential_id is None:
            raise SystemExit("no credential in this authenticator")
        out = encode(dev.get(decode_options(req["options"]), req["origin"]))
    elif op == "rekey":
        dev.private_key = ec.generate_private_key(ec.SECP256R1())
        out = {}
    else:
        raise SystemExit(f"unknown op {op}")
    save(dev, req["state"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
