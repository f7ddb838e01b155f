"""A local token-issuer cluster: N instances on loopback behind HAProxy, sharing one
PostgreSQL database, Redis (rate limits) and one key directory. Used by scripts/cluster (the
demo) and scripts/drills (the fault drills), which control instances one by one.
"""

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def http_status(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_until(check, limit, what, process=None):
    """Polls `check` until it holds: a failure after `limit` seconds, or at once when `process`
    (the one that should come to answer) has exited."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        # Exited first: another process on the same port must not pass for this one.
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: it exited with status {process.returncode}")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} within {limit} s")


class Instance:
    def __init__(self, cluster, index):
        self.cluster, self.index = cluster, index
        self.port, self.admin = free_port(), free_port()
        self.log = os.path.join(cluster.dir, f"instance-{index}.log")
        self.process = None

    @property
    def name(self):
        return f"instance {self.index}"

    def start(self):
        env = dict(self.cluster.env, ISSUER_BIND=f"127.0.0.1:{self.port}", ISSUER_ADMIN_BIND=f"127.0.0.1:{self.admin}")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.cluster.binary, "serve"], cwd=self.cluster.dir, env=env, stdout=log, stderr=log
            )

    def ready(self):
        return http_status(f"http://127.0.0.1:{self.admin}/readyz") == 200

    def wait_ready(self, limit=60):
        try:
            wait_until(self.ready, limit, f"{self.name} was not ready", self.process)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; the end of its log:\n{self.log_tail()}") from None

    def log_tail(self, lines=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(collections.deque(f, maxlen=lines))
        except OSError as e:
            return f"(no log: {e})"

    def signal(self, sig):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_exit(self, limit=40):
        try:
            return self.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise RuntimeError(f"{self.name} did not stop within {limit} s")


class Cluster:
    """Builds nothing: `binary` is a token-issuer built beforehand."""

    def __init__(self, binary, count, workdir, database_url, redis_url, extra_env=None):
        self.binary, self.dir = binary, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.haproxy = None
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "ISSUER_URL": self.url,
            "ISSUER_DATABASE_URL": database_url,
            "ISSUER_KEY_SOURCE": f"file:{os.path.join(workdir, 'keys')}",
            "ISSUER_RATE_LIMIT_STORE": redis_url,
            "ISSUER_TRUSTED_PROXIES": "127.0.0.1/32",
            "ISSUER_LOG_FORMAT": "json",
            "ISSUER_KEY_RELOAD_INTERVAL": "2s",
            # Longer than HAProxy's check interval: a stopping instance is taken out first.
            "ISSUER_SHUTDOWN_DELAY": "2s",
            **(extra_env or {}),
        }
        self.instances = [Instance(self, i + 1) for i in range(count)]

    def run(self, *args):
        """A token-issuer command with the cluster's settings (keys, clients, …)."""
        return subprocess.run(
            [self.binary, *args], cwd=self.dir, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def client_secret(self, client_id):
        """Registers a client_credentials client; its secret."""
        printed = self.run("clients", "create", "--id", client_id, "--grant", "client_credentials")
        return next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("client_secret: "))

    def start(self):
        os.makedirs(os.path.join(self.dir, "keys"), mode=0o700, exist_ok=True)
        self.run("migrate")
        # An empty key source (a secret not made yet) is refused by `keys list`: bootstrap it.
        listing = subprocess.run([self.binary, "keys", "list"], cwd=self.dir, env=self.env, capture_output=True, text=True)
        if "active" not in listing.stdout:
            self.run("keys", "generate", "--alg", "RS256")
        for instance in self.instances:
            instance.start()
        for instance in self.instances:
            instance.wait_ready()
        self.start_haproxy()

    def start_haproxy(self):
        # Ready instances take the traffic. When none is ready — a shared dependency
        # (PostgreSQL) is down for all of them — the backups, the same instances unchecked,
        # keep serving what needs no database (the JWKS, discovery) and answer 503 fast for
        # the rest, instead of HAProxy refusing everything.
        servers = "\n".join(
            f"    server issuer{i.index} 127.0.0.1:{i.port} check port {i.admin}\n"
            f"    server issuer{i.index}-any 127.0.0.1:{i.port} backup"
            for i in self.instances
        )
        config = f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 15s
    option forwardfor
    option http-keep-alive
    retries 2
    option redispatch
    retry-on conn-failure empty-response
frontend issuer
    bind 127.0.0.1:{self.port}
    default_backend issuers
backend issuers
    balance roundrobin
    # A POST that reached an instance may have done its work there (a refresh rotated): only
    # GETs are retried after that; a request that never reached one is always retried.
    http-request disable-l7-retry unless METH_GET
    option allbackups
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 1 rise 2
{servers}
"""
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        self.haproxy = subprocess.Popen(["haproxy", "-f", path, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: http_status(f"{self.url}/healthz") == 200, 30, "HAProxy did not answer")

    def stop(self):
        for instance in self.instances:
            instance.signal(signal.SIGTERM)
        for instance in self.instances:
            if instance.process:
                try:
                    instance.wait_exit(30)
                except RuntimeError:
                    pass
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)


def scratch(admin_url, name):
    """An empty work directory target/NAME and a fresh database token_issuer_NAME."""
    workdir = os.path.join(ROOT, "target", name)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    return workdir, fresh_database(admin_url, f"token_issuer_{name}")


def fresh_database(admin_url, name):
    """Drops and creates database `name` on the server of `admin_url`; its URL."""
    server = admin_url.rsplit("/", 1)[0]
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)
    return f"{server}/{name}"


def main():
    import argparse

    parser = argparse.ArgumentParser(description="N token-issuer instances behind HAProxy on loopback")
    parser.add_argument("count", nargs="?", type=int, default=3)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--postgres", required=True, help="an admin URL of the PostgreSQL server")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    workdir, database = scratch(args.postgres, "cluster")
    cluster = Cluster(os.path.abspath(args.binary), args.count, workdir, database, args.redis)
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        cluster.start()
        print(f"token-issuer: {args.count} instances behind HAProxy at {cluster.url}")
        for i in cluster.instances:
            print(f"  instance {i.index}: pid {i.process.pid}, http://127.0.0.1:{i.port}, admin http://127.0.0.1:{i.admin}, log {i.log}")
        print(f"  PostgreSQL {database}, Redis {args.redis}, keys {cluster.dir}/keys")
        print("Ctrl-C stops the cluster.")
        sys.stdout.flush()
        while not stopping:
            for i in cluster.instances:
                if i.process.poll() is not None:
                    print(f"instance {i.index} exited ({i.process.returncode}); see {i.log}", file=sys.stderr)
                    stopping.append(1)
            time.sleep(0.5)
    finally:
        print("stopping: SIGTERM to every instance, then HAProxy")
        cluster.stop()


if __name__ == "__main__":
    main()
