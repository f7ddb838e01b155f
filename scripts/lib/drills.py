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
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ROOT, Cluster, http_status, scratch, wait_until  # noqa: E402
from ports import free_port  # noqa: E402

PASSWORD = "violet tractor melts quietly"


class Tally:
    """Counts per kind of request: sent, succeeded, and failures by reason."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = collections.Counter()
        self.ok = collections.Counter()
        self.failed = collections.defaultdict(collections.Counter)
        self.slowest_failure = 0.0

    def record(self, kind, reason=None, seconds=0.0):
        with self.lock:
            self.sent[kind] += 1
            if reason is None:
                self.ok[kind] += 1
            else:
                self.failed[kind][reason] += 1
                self.slowest_failure = max(self.slowest_failure, seconds)

    def failures(self, kind=None):
        kinds = [kind] if kind else list(self.failed)
        return sum(sum(self.failed[k].values()) for k in kinds)

    def report(self, title):
        print(f"  {title}")
        for kind in sorted(self.sent):
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.failed[kind].items())) or "none"
            print(f"    {kind:<20} sent {self.sent[kind]:>6}  succeeded {self.ok[kind]:>6}  failed {self.failures(kind):>3} ({why})")


class Phases:
    """The tally workers record into now; a drill moves it on (before, during, after)."""

    def __init__(self):
        self.current = Tally()
        self.done = []

    def next(self, title):
        self.done.append((title, self.current))
        self.current = Tally()

    def record(self, kind, reason=None, seconds=0.0):
        self.current.record(kind, reason, seconds)


class Worker(threading.Thread):
    """One keep-alive connection to the load balancer, sending one kind of request.
    `retry_same`: after a 5xx, a refresh is retried with the same token (the drill checks
    that a failed rotation changed nothing); otherwise the session is started anew."""

    def __init__(self, cluster, kind, tally, stop, secret=None, retry_same=False):
        super().__init__(daemon=True)
        self.host, self.port = "127.0.0.1", cluster.port
        self.kind, self.tally, self.stop, self.secret = kind, tally, stop, secret
        self.retry_same = retry_same
        self.conn = None
        self.broken = 0  # refresh families refused although we held their newest token
        self.lost = 0  # refreshes whose answer never came (the family is then started anew)

    def request(self, method, path, body=None, headers=None):
        """(status or None, body); `self.took`: how long it took."""
        started = time.monotonic()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            return resp.status, data
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            return None, type(e).__name__
        finally:
            self.took = time.monotonic() - started

    def record(self, kind, status, expected=200, note=""):
        reason = None if status == expected else f"{status or 'connection'}{note}"
        self.tally.record(kind, reason, self.took)

    def run(self):
        getattr(self, "run_" + self.kind)()

    def run_jwks(self):
        while not self.stop.is_set():
            status, _ = self.request("GET", "/.well-known/jwks.json")
            self.record("jwks", status)
            # GET is idempotent: the drill's client retries it (counted above as a failure).

    def run_client_credentials(self):
        auth = "Basic " + base64.b64encode(f"drill:{self.secret}".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        while not self.stop.is_set():
            status, _ = self.request("POST", "/oauth2/token", "grant_type=client_credentials", headers)
            self.record("client_credentials", status)

    def login(self, email, kind=None):
        """A refresh token for `email`, trying until it comes (recorded as `kind` if given)."""
        body = json.dumps({"email": email, "password": PASSWORD})
        while not self.stop.is_set():
            status, data = self.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
            if kind:
                self.record(kind, status)
            if status == 200:
                return json.loads(data)["refresh_token"]
            time.sleep(0.05)
        return None

    def register(self, email):
        body = json.dumps({"email": email, "password": PASSWORD})
        while not self.stop.is_set():
            status, _ = self.request("POST", "/api/v1/auth/register", body, {"Content-Type": "application/json"})
            if status in (201, 409):
                return
            time.sleep(0.2)

    def run_login(self):
        email = f"drill-{self.name}@example.com"
        self.register(email)
        while not self.stop.is_set():
            self.login(email, kind="login")
            time.sleep(0.05)

    def run_refresh(self):
        email = f"drill-{self.name}@example.com"
        self.register(email)
        token = self.login(email)
        headers = {"Content-Type": "application/json"}
        while token and not self.stop.is_set():
            status, data = self.request("POST", "/api/v1/auth/refresh", json.dumps({"refresh_token": token}), headers)
            if status == 200:
                token = json.loads(data)["refresh_token"]
                self.record("refresh", status)
            elif status == 503 and self.retry_same:
                # Refused before anything changed: the same token must work once it is back.
                self.record("refresh", status)
                time.sleep(0.1)
            elif status is None or status >= 500:
                # The answer was lost: the rotation may have happened. Not retried (not
                # idempotent); the session is started anew.
                self.record("refresh", status, note=" (in flight)")
                self.lost += 1
                token = self.login(email)
            else:
                # We held the newest token and had every answer: the family must not refuse.
                self.record("refresh", status, note=" (family broken)")
                self.broken += 1
                token = self.login(email)


def load(cluster, secret, tally, stop, retry_same=False, logins=0):
    workers = [Worker(cluster, "jwks", tally, stop) for _ in range(3)]
    workers += [Worker(cluster, "client_credentials", tally, stop, secret) for _ in range(3)]
    workers += [Worker(cluster, "refresh", tally, stop, retry_same=retry_same) for _ in range(4)]
    workers += [Worker(cluster, "login", tally, stop) for _ in range(logins)]
    for w in workers:
        w.start()
    return workers


def report(phases, title):
    print(f"  {title}")
    for name, tally in phases.done:
        tally.report(name)


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


def postgres(action):
    version = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(args + (["-m", "fast"] if action == "stop" else []), check=True, capture_output=True)


def drill_postgres_restart(cluster, secret):
    """PostgreSQL stopped for 4 s under load, then started again; no instance restarted."""
    phases, stop = Phases(), threading.Event()
    workers = load(cluster, secret, phases, stop, retry_same=True)
    time.sleep(2)
    phases.next("before (2 s)")
    postgres("stop")
    time.sleep(4)
    postgres("start")
    started = time.monotonic()
    wait_until(lambda: all(i.ready() for i in cluster.instances), 60, "the instances did not recover")
    recovered = time.monotonic() - started
    phases.next("PostgreSQL down (4 s), starting, until every instance is ready again")
    time.sleep(3)
    phases.next("after (3 s)")
    broken = finish(workers, stop)
    report(phases, "PostgreSQL stopped under load, then started:")
    print(f"    every instance ready again {recovered:.1f} s after PostgreSQL started, none restarted")
    (_, before), (_, down), (_, after) = phases.done
    problems = []
    if broken:
        problems.append(f"{broken} refresh rotations lost or duplicated")
    if down.failures("jwks") or after.failures("jwks"):
        problems.append("the JWKS failed while PostgreSQL was down")
    if any(r != "503" for k in down.failed for r in down.failed[k]):
        problems.append(f"failures other than 503 while PostgreSQL was down: {dict(down.failed)}")
    timeout = 10.0  # ISSUER_REQUEST_TIMEOUT's default
    if down.slowest_failure > timeout:
        problems.append(f"a request failed only after {down.slowest_failure:.1f} s (request timeout {timeout} s)")
    if before.failures() or after.failures():
        problems.append("failures outside the outage: before " f"{before.failures()}, after {after.failures()}")
    return problems


def redis(action):
    if action == "stop":
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    else:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                        "--save", "", "--appendonly", "no", "--dir", "/tmp",
                        "--logfile", "/tmp/token-issuer-redis.log"], check=True, capture_output=True)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("Redis did not come back")


def drill_redis_stop(cluster, secret):
    """Redis (the rate-limit store) stopped under load for 4 s, then started again."""
    phases, stop = Phases(), threading.Event()
    workers = load(cluster, secret, phases, stop, logins=2)
    time.sleep(2)
    phases.next("before (2 s)")
    redis("stop")
    time.sleep(0.5)
    phases.next("Redis stopping (0.5 s: logins already past the budget may finish)")
    time.sleep(4)
    phases.next("Redis down (4 s)")
    redis("start")
    time.sleep(3)
    phases.next("after it is back (3 s)")
    broken = finish(workers, stop)
    report(phases, "Redis stopped under load, then started:")
    (_, before), (_, stopping), (_, down), (_, after) = phases.done
    problems = []
    if broken:
        problems.append(f"{broken} refresh families broken")
    if any(stopping.failures(kind) for kind in ("jwks", "client_credentials", "refresh")):
        problems.append("token, refresh or JWKS requests failed while Redis stopped")
    for kind in ("jwks", "client_credentials", "refresh"):
        if down.failures(kind):
            problems.append(f"{kind} failed while Redis was down: it must go on unmetered")
    if down.ok["login"] or set(down.failed["login"]) - {"503"}:
        problems.append(f"logins while Redis was down: {down.ok['login']} succeeded, {dict(down.failed['login'])}; they must fail closed (503)")
    if not after.ok["login"]:
        problems.append("logins did not come back with Redis")
    if before.failures():
        problems.append(f"{before.failures()} failures before the outage")
    return problems


def jwks_kids(cluster, instance):
    with urllib.request.urlopen(f"http://127.0.0.1:{instance.port}/.well-known/jwks.json", timeout=5) as resp:
        return sorted(k["kid"] for k in json.load(resp)["keys"])


def drill_key_source_outage(args):
    """The key source (a local Secrets Manager, moto) unreachable under load and during a
    rotation: the last good keyset is served, and the rotation completes when it returns."""
    moto_port = free_port()
    moto = subprocess.Popen([os.path.join(ROOT, "target", "py-venv", "bin", "moto_server"), "-H", "127.0.0.1",
                             "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workdir, database = scratch(args.postgres, "drills_keys")
    env = {
        "ISSUER_KEY_SOURCE": "aws-secretsmanager:drill/keys",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        # A rotation the drill can wait for: published 3 s, reloaded every second.
        "ISSUER_JWKS_MAX_AGE": "1s",
        "ISSUER_KEY_RELOAD_INTERVAL": "1s",
        "ISSUER_KEY_PUBLICATION_PERIOD": "3s",
        "ISSUER_TOKEN_RATE_LIMIT": "1000000/1m",
    }
    cluster = Cluster(os.path.abspath(args.binary), 3, workdir, database, args.redis, env)
    problems = []
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{moto_port}/moto-api/") is not None, 30, "moto did not answer")
        cluster.start()
        cluster.run("keys", "generate", "--alg", "RS256")  # the pending key the rotation promotes
        secret = cluster.client_secret("drill")
        time.sleep(4)  # every instance publishes the pending key; it becomes promotable
        before = jwks_kids(cluster, cluster.instances[0])
        phases, stop = Phases(), threading.Event()
        workers = [Worker(cluster, "jwks", phases, stop) for _ in range(3)]
        workers += [Worker(cluster, "client_credentials", phases, stop, secret) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(2)
        phases.next("before (2 s)")
        moto.send_signal(signal.SIGSTOP)  # unreachable: connections hang
        refused = subprocess.run([cluster.binary, "keys", "rotate"], cwd=cluster.dir, env=cluster.env,
                                 capture_output=True, text=True, timeout=60)
        time.sleep(2)
        phases.next("key source unreachable; keys rotate tried and failed")
        moto.send_signal(signal.SIGCONT)
        rotated = subprocess.run([cluster.binary, "keys", "rotate"], cwd=cluster.dir, env=cluster.env,
                                 capture_output=True, text=True, timeout=60)
        wait_until(lambda: all(jwks_kids(cluster, i) != before for i in cluster.instances), 15,
                   "the instances did not pick up the rotation")
        time.sleep(1)
        phases.next("key source back; rotated, every instance reloaded")
        finish(workers, stop)
        report(phases, "AWS Secrets Manager (moto) unreachable under load and during a rotation:")
        print(f"    keys rotate while unreachable: exit {refused.returncode}; after: exit {rotated.returncode}")
        print(f"    JWKS kids before {len(before)}, after {len(jwks_kids(cluster, cluster.instances[0]))} (all instances alike)")
        if refused.returncode == 0:
            problems.append("keys rotate succeeded against an unreachable key source")
        if rotated.returncode != 0:
            problems.append(f"keys rotate failed after the key source came back: {rotated.stderr.strip()}")
        if any(t.failures() for _, t in phases.done):
            problems.append("requests failed: the last good keyset must go on serving")
        kids = {tuple(jwks_kids(cluster, i)) for i in cluster.instances}
        if len(kids) != 1:
            problems.append(f"the instances publish different keys: {kids}")
    finally:
        cluster.stop()
        moto.send_signal(signal.SIGCONT)
        moto.terminate()
        moto.wait(timeout=10)
    return problems


def drill_two_instances_on_an_empty_database(args):
    """Two instances started at once on an empty database: the migrations run once."""
    workdir, database = scratch(args.postgres, "drills_empty")
    os.makedirs(os.path.join(workdir, "keys"), mode=0o700)
    cluster = Cluster(os.path.abspath(args.binary), 2, workdir, database, args.redis)
    cluster.run("keys", "generate", "--alg", "RS256")
    try:
        for instance in cluster.instances:
            instance.start()
        for instance in cluster.instances:
            instance.wait_ready()
        applied = subprocess.run(
            ["psql", database, "-tAc", "SELECT version, count(*) FROM _sqlx_migrations GROUP BY version ORDER BY version"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
    finally:
        cluster.stop()
    files = len([f for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql")])
    counts = [int(row.split("|")[1]) for row in applied]
    print(f"  two instances started at once on an empty database: both ready; {len(counts)} migrations applied, each {set(counts)} time(s)")
    if len(counts) != files or set(counts) != {1}:
        return [f"migrations applied {applied}, expected each of {files} once"]
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()
    workdir, database = scratch(args.postgres, "drills")
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
        secret = cluster.client_secret("drill")
        for drill in (drill_kill, drill_rolling_restart, drill_postgres_restart, drill_redis_stop):
            problems = drill(cluster, secret)
            for p in problems:
                print(f"  FAILED: {p}")
            failed += problems
    finally:
        cluster.stop()
    for drill in (drill_key_source_outage, drill_two_instances_on_an_empty_database):
        problems = drill(args)
        for p in problems:
            print(f"  FAILED: {p}")
        failed += problems
    if failed:
        print(f"drills: {len(failed)} problems; instance logs in {workdir}", file=sys.stderr)
        for problem in failed:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(1)
    print("drills: ok")


if __name__ == "__main__":
    main()
