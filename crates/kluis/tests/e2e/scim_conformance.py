"""Runs the PyPI scim2-tester conformance checks against a running Kluis server.

Usage: python3 scim_conformance.py <base_url> <ca_cert.pem>; the SCIM token comes from the
environment (KLUIS_SCIM_TOKEN), never the command line. Prints every result and exits 1 if
any check ended in ERROR or CRITICAL.
"""

import os
import ssl
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base_url, ca_cert = sys.argv[1], sys.argv[2]
token = os.environ["KLUIS_SCIM_TOKEN"]
# The test server's certificate is self-signed for localhost: trust exactly that certificate
# (verification stays on).
ctx = ssl.create_default_context(cafile=ca_cert)
http = httpx2.Client(
    base_url=base_url,
    headers={"Authorization": f"Bearer {token}"},
    verify=ctx,
    timeout=30,
)
client = SyncSCIMClient(http)
results = check_server(client, raise_exceptions=False)
failed = 0
for r in results:
    bad = r.status in (Status.ERROR, Status.CRITICAL)
    failed += bad
    print(f"{r.status.name:10} {r.resource_type or '-':6} {r.title}: {r.reason}")
    if bad and r.data is not None:
        print(f"           data: {str(r.data)[:600]}")
print(f"checks: {len(results)} failed: {failed}")
sys.exit(1 if failed or not results else 0)
