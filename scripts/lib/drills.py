"""Fault drills against a local cluster (scripts/lib/cluster.py): steady load through HAProxy
while an instance is killed, or every instance is restarted in turn. Each drill prints what
was sent, what succeeded and what failed (and why), and fails when the cluster did worse
than it must.

Usage: python3 drills.py --binary PATH --postgres ADMIN_URL [--redis URL]
"""

import argparse
import base64
import collections
import http.client
import json
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ROOT, Cluster, fresh_database  # noqa: E402

PASSWORD = "violet tractor melts quietly"


class Tally:
    """Counts per kind of request: sent, succeeded, and failures by reason."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = collections.Counter()
        self.ok = collections.Counter()
        self.failed = collections.defaultdict(collections.Counter)

    def record(self, kind, reason=None):
        with self.lock:
            self.sent[kind] += 1
            if reason is None:
                self.ok[kind] += 1
            else:
                self.failed[kind][reason] += 1

    def failures(self, kind=None):
        kinds = [kind] if kind else list(self.failed)
        return sum(sum(self.failed[k].values()) for k in kinds)

    def report(self, title):
        print(f"  {title}")
        for kind in sorted(self.sent):
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.failed[kind].items())) or "none"
            print(f"    {kind:<20} sent {self.sent[kind]:>6}  succeeded {self.ok[kind]:>6}  failed {self.failures(kind):>3} ({why})")


class Worker(threading.Thread):
    """One keep-alive connection to the load balancer, sending one kind of request."""

    def __init__(self, cluster, kind, tally, stop, secret=None):
        super().__init__(daemon=True)
        self.host, self.port = "127.0.0.1", cluster.port
        self.kind, self.tally, self.stop, self.secret = kind, tally, stop, secret
        self.conn = None
        self.broken = 0  # refresh families refused although we held their newest token
        self.lost = 0  # refreshes whose answer never came (the family is then started anew)

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            return resp.status, data
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            return None, type(e).__name__

    def run(self):
        getattr(self, "run_" + self.kind)()

    def run_jwks(self):
        while not self.stop.is_set():
            status, _ = self.request("GET", "/.well-known/jwks.json")
            reason = None if status == 200 else f"{status or 'connection'}"
            self.tally.record("jwks", reason)
            # GET is idempotent: the drill's client retries it (counted above as a failure).

    def run_client_credentials(self):
        auth = "Basic " + base64.b64encode(f"drill:{self.secret}".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        while not self.stop.is_set():
            status, _ = self.request("POST", "/oauth2/token", "grant_type=client_credentials", headers)
            self.tally.record("client_credentials", None if status == 200 else f"{status or 'connection'}")

    def login(self, email):
        body = json.dumps({"email": email, "password": PASSWORD})
        while not self.stop.is_set():
            status, data = self.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
            if status == 200:
                return json.loads(data)["refresh_token"]
            time.sleep(0.05)
        return None

    def run_refresh(self):
        email = f"drill-{self.name}@example.com"
        self.request("POST", "/api/v1/auth/register", json.dumps({"email": email, "password": PASSWORD}),
                     {"Content-Type": "application/json"})
        token = self.login(email)
        headers = {"Content-Type": "application/json"}
        while token and not self.stop.is_set():
            status, data = self.request("POST", "/api/v1/auth/refresh", json.dumps({"refresh_token": token}), headers)
            if status == 200:
                token = json.loads(data)["refresh_token"]
                self.tally.record("refresh")
            elif status is None or status >= 500:
                # The answer was lost: the rotation may have happened. Not retried (not
                # idempotent); the session is started anew.
                self.tally.record("refresh", f"{status or 'connection'} (in flight)")
                self.lost += 1
                token = self.login(email)
            else:
                # We held the newest token and had every answer: the family must not refuse.
                self.tally.record("refresh", f"{status} (family broken)")
                self.broken += 1
                token = self.login(email)


def load(cluster, secret, tally, stop):
    workers = [Worker(cluster, "jwks", tally, stop) for _ in range(3)]
    workers += [Worker(cluster, "client_credentials", tally, stop, secret) for _ in range(3)]
    workers += [Worker(cluster, "refresh", tally, stop) for _ in range(4)]
    for w in workers:
        w.start()
    return workers


def finish(workers, stop):
    stop.set()
    for w in workers:
        w.join(timeout=30)
    return sum(w.broken for w in workers)


def drill_kill(cluster, secret):
    """One instance SIGKILLed under steady load."""
    tally, stop = Tally(), threading.Event()
    workers = load(cluster, secret, tally, stop)
    time.sleep(3)
    victim = cluster.instances[1]
    victim.signal(signal.SIGKILL)
    victim.wait_exit()
    time.sleep(4)
    broken = finish(workers, stop)
    tally.report(f"SIGKILL of {victim.name} under load (3 s before, 4 s after):")
    victim.start()
    victim.wait_ready()
    # At most the requests in flight on the killed instance fail: one per worker.
    problems = []
    if broken:
        problems.append(f"{broken} refresh families broken")
    if tally.failures() > len(workers):
        problems.append(f"{tally.failures()} failed requests; at most {len(workers)} were in flight")
    return problems


def drill_rolling_restart(cluster, secret):
    """SIGTERM one instance at a time, wait until it is ready again, then the next."""
    tally, stop = Tally(), threading.Event()
    workers = load(cluster, secret, tally, stop)
    time.sleep(2)
    for instance in cluster.instances:
        instance.signal(signal.SIGTERM)
        instance.wait_exit()
        instance.start()
        instance.wait_ready()
        time.sleep(1)
    broken = finish(workers, stop)
    tally.report(f"rolling restart of {len(cluster.instances)} instances under load:")
    problems = []
    if broken:
        problems.append(f"{broken} refresh families broken")
    if tally.failures():
        problems.append(f"{tally.failures()} failed requests; a rolling restart must fail none")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()
    workdir = os.path.join(ROOT, "target", "drills")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    database = fresh_database(args.postgres, "token_issuer_drills")
    budgets = {
        "ISSUER_REFRESH_RATE_LIMIT": "1000000/1m",
        "ISSUER_TOKEN_RATE_LIMIT": "1000000/1m",
        "ISSUER_REGISTER_RATE_LIMIT": "1000000/1m",
        "ISSUER_LOGIN_MAX_FAILURES": "1000",
    }
    cluster = Cluster(os.path.abspath(args.binary), 3, workdir, database, args.redis, budgets)
    failed = []
    try:
        cluster.start()
        secret = next(
            line.split(": ", 1)[1]
            for line in cluster.run("clients", "create", "--id", "drill", "--grant", "client_credentials").splitlines()
            if line.startswith("client_secret: ")
        )
        for drill in (drill_kill, drill_rolling_restart):
            problems = drill(cluster, secret)
            for p in problems:
                print(f"  FAILED: {p}")
            failed += problems
    finally:
        cluster.stop()
    if failed:
        print(f"drills: {len(failed)} problems; instance logs in {workdir}", file=sys.stderr)
        sys.exit(1)
    print("drills: ok")


if __name__ == "__main__":
    main()
