#!/usr/bin/env python3
"""RPO benchmark (not a test): a real `kluis serve` shipping its WAL into a repository, a steady
writer through the HTTP API, then `kill -9` of the server; restore from the repository and count
the acknowledged writes that are missing, and how old the oldest of them was at the kill.

    cargo build -p kluis && python3 crates/kluis-backup/examples/rpo_kill9.py [seconds]
"""
import json, os, re, signal, subprocess, sys, tempfile, time

KLUIS = os.environ.get("KLUIS_BIN", "target/debug/kluis")
secs = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
work = tempfile.mkdtemp(prefix="kluis-rpo-")
data, repo, data2 = (os.path.join(work, d) for d in ("data", "repo", "restored"))

def cli(*args, data_dir=data, env=None):
    out = subprocess.run([KLUIS, "--data-dir", data_dir, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.exit(f"kluis {args} failed: {out.stderr}\n{out.stdout}")
    return out.stdout

env = {"KLUIS_ALLOW_ROOT": "true", "KLUIS_BACKUP_REPO": repo, "KLUIS_BACKUP_DRILL_INTERVAL_HOURS": "0", "KLUIS_LOG": "warn"}
cli("tenant", "create", "--slug", "rpo", "--name", "RPO", "--json", env=env)
key = json.loads(cli("apikey", "create", "--tenant", "rpo", "--name", "w", "--scopes",
                     "crm:read,crm:write", "--json", env=env))["secret"]
server = subprocess.Popen([KLUIS, "--data-dir", data, "serve", "--listen", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env={**os.environ, **env})
port = None
for line in server.stdout:
    m = re.search(r"listening on https://[^:]+:(\d+)", line)
    if m:
        port = m.group(1)
        break
time.sleep(2)  # the start-up snapshot
acks = []
start = time.time()
i = 0
while time.time() - start < secs:
    body = json.dumps({"fields": {"first_name": f"w{i}", "last_name": "rpo", "email": f"w{i}@rpo.nl"}})
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                        f"https://127.0.0.1:{port}/api/v1/contacts", "-H", f"Authorization: Bearer {key}",
                        "-H", "Content-Type: application/json", "-d", body], capture_output=True, text=True)
    if r.stdout == "201":
        acks.append(time.time())
    i += 1
kill_at = time.time()
server.send_signal(signal.SIGKILL)
server.wait()
report = json.loads(cli("backup", "restore", "--repo", repo, "--kek-file",
                        os.path.join(data, "keys", "kek.key"), "--json", data_dir=data2))
restored = report["row_counts"]["crm_records"]
missing = len(acks) - restored
oldest = kill_at - acks[restored] if missing > 0 else 0.0
print(f"RPO (kill -9 of kluis serve): {len(acks)} acknowledged writes in {secs:.0f} s "
      f"({len(acks)/secs:.0f}/s); restored {restored}; missing {missing}; "
      f"the oldest missing was acknowledged {oldest:.2f} s before the kill; audit ok: {report['audit_ok']}")
subprocess.run(["rm", "-rf", work])
