"""token-issuer beside node-oidc-provider, under the same wrk load, in one run.

Starts the peer (../shared/peers/oidc-provider, RS256 and EdDSA) and token-issuer on SQLite
and on PostgreSQL (one instance per signing algorithm), measures what the crypto alone costs
here (crypto-floor), then runs every workload against each server in turn: wrk, one thread,
32 connections, a warm-up and a measured run; the rows whose ratio to the crypto is a target
read their primitive again right before and after their own load. Server CPU comes from
/proc/PID/stat, so the load generator's share is left out; PostgreSQL's own CPU is reported
apart. Prints one Markdown table, then each target of BENCHMARKS.md with its verdict.
"""

import argparse
import http.client
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ROOT, fresh_database, http_status, wait_until  # noqa: E402
from ports import free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CLIENT_ID, CLIENT_SECRET_PEER = "bench", "bench-secret-0123456789"
RESOURCE, OPAQUE_RESOURCE, SCOPE = "urn:bench:api", "urn:bench:opaque", "api:read"
PASSWORD = "bench password that is long enough"
USERS = 8
NEW_TOKENS = "introspection, a new token each time"
LOGIN_ENV = {"BENCH_PASSWORD": PASSWORD, "BENCH_USERS": str(USERS)}


def say(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes and /proc


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def postgres_pids():
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def postgres_ticks():
    total = 0
    for pid in postgres_pids():
        try:
            total += cpu_ticks(pid)
        except (OSError, IndexError):
            pass  # a backend that ended meanwhile
    return total


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def basic(client_id, secret):
    return "Basic " + b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()


# ---------------------------------------------------------------- servers


class Server:
    """One server under test: its base URL, the process whose CPU counts, and its endpoints."""

    def __init__(self, name, backend, alg, url, pid):
        self.name, self.backend, self.alg, self.url, self.pid = name, backend, alg, url, pid
        self.idle_rss = None
        self.discover()

    def discover(self):
        doc = request(f"{self.url}/.well-known/openid-configuration")
        self.token_endpoint = doc["token_endpoint"]
        self.jwks_uri = doc["jwks_uri"]
        self.introspection_endpoint = doc["introspection_endpoint"]

    @property
    def label(self):
        return self.name if self.backend is None else f"{self.name} ({self.backend})"


class Peer:
    """node-oidc-provider, run from a writable copy of its folder under target/."""

    def __init__(self, source, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        for name in ("server.mjs", "package.json", "package-lock.json", "start.sh", "stop.sh"):
            shutil.copyfile(os.path.join(source, name), os.path.join(workdir, name))
            os.chmod(os.path.join(workdir, name), 0o755)
        self.ports = []

    def start(self, alg):
        port = free_port()
        out = subprocess.run(
            ["./start.sh"], cwd=self.dir, env=dict(os.environ, PORT=str(port), ALG=alg),
            check=True, capture_output=True, text=True,
        ).stdout
        self.ports.append(port)
        pid = int(re.search(r"pid (\d+)", out).group(1))
        return Server("node-oidc-provider", None, alg, f"http://127.0.0.1:{port}", pid)

    def stop(self):
        for port in self.ports:
            subprocess.run(["./stop.sh"], cwd=self.dir, env=dict(os.environ, PORT=str(port)), capture_output=True)


class BareServer(Server):
    """One of http-floor's answers, as a row of its own."""

    def __init__(self, backend, alg, url, pid):
        super().__init__("bare hyper server", backend, alg, url, pid)

    def discover(self):
        self.jwks_uri = self.token_endpoint = self.url
        self.secret = CLIENT_SECRET_PEER  # sent as ours is; it checks none


class HttpFloor:
    """http-floor: a bare hyper server. A GET gets the same bytes as our JWKS; a POST a fresh
    token, signed as ours are (RS256 on the blocking pool, EdDSA on the worker), and nothing
    else. The least any HTTP server could do for those loads on this machine."""

    def __init__(self, binary, body, workdir):
        path = os.path.join(workdir, "jwks.json")
        with open(path, "wb") as f:
            f.write(body)
        port = free_port()
        self.process = subprocess.Popen([binary, str(port), path])
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: http_status(url) == 200, 30, "http-floor was not ready", self.process)
        except RuntimeError:
            self.stop()
            raise
        self.jwks = BareServer("same bytes", "RS256", url, self.process.pid)
        self.signing = {"RS256": BareServer("signs only", "RS256", url, self.process.pid),
                        "EdDSA": BareServer("signs only", "EdDSA", f"{url}/eddsa", self.process.pid)}

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Ours:
    """token-issuer on one database: a client `bench`, users, and one instance per algorithm."""

    def __init__(self, binary, backend, workdir, database_url):
        self.binary, self.backend, self.dir = binary, backend, workdir
        self.processes = []
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "ISSUER_DATABASE_URL": database_url,
            "ISSUER_KEY_SOURCE": f"file:{os.path.join(workdir, 'keys')}",
            "ISSUER_LOG_FORMAT": "json",
            # Default settings but for the budgets, which the load would exhaust at once.
            "ISSUER_TOKEN_RATE_LIMIT": "1000000000/1s",
            "ISSUER_REFRESH_RATE_LIMIT": "1000000000/1s",
            "ISSUER_REGISTER_RATE_LIMIT": "1000000000/1s",
            # The login flood comes from one address: its budget of failures is spent before
            # each password check and given back on success, so 32 at once need room.
            "ISSUER_LOGIN_MAX_FAILURES": "1000",
            "ISSUER_LOGIN_FAILURE_WINDOW": "1s",
        }
        os.makedirs(os.path.join(workdir, "keys"), mode=0o700, exist_ok=True)
        self.run("migrate")
        for alg in ("RS256", "EdDSA"):
            self.run("keys", "generate", "--alg", alg)
        printed = self.run(
            "clients", "create", "--id", CLIENT_ID, "--grant", "client_credentials",
            "--scope", "api:read api:write", "--audience", RESOURCE,
        )
        self.secret = next(l.split(": ", 1)[1] for l in printed.splitlines() if l.startswith("client_secret: "))

    def run(self, *args):
        return subprocess.run(
            [self.binary, *args], cwd=self.dir, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def start(self, alg):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(self.env, ISSUER_BIND=f"127.0.0.1:{port}", ISSUER_URL=url, ISSUER_SIGNING_ALG=alg)
        log = open(os.path.join(self.dir, f"serve-{alg}.log"), "ab")
        process = subprocess.Popen([self.binary, "serve"], cwd=self.dir, env=env, stdout=log, stderr=log)
        self.processes.append(process)
        wait_until(lambda: http_status(f"{url}/readyz") == 200, 60, f"token-issuer ({self.backend}, {alg}) was not ready",
                   process)
        return Server("token-issuer", self.backend, alg, url, process.pid)

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)



# ---------------------------------------------------------------- credentials


def client_credentials_body(resource=RESOURCE):
    return f"grant_type=client_credentials&resource={quote(resource, safe='')}&scope={SCOPE}"


def token_request(secret, resource=RESOURCE):
    """The body and headers of a client_credentials request of the bench client."""
    body = client_credentials_body(resource).encode()
    return body, {"Authorization": basic(CLIENT_ID, secret), "Content-Type": "application/x-www-form-urlencoded"}


def client_token(server, secret, resource=RESOURCE):
    return request(server.token_endpoint, *token_request(secret, resource))["access_token"]


def client_tokens(server, secret, count, connections=4):
    """`count` distinct access tokens, asked for over a few connections at once."""
    body, headers = token_request(secret)
    endpoint = urlparse(server.token_endpoint)

    def some(n):
        connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
        tokens = []
        for _ in range(n):
            connection.request("POST", endpoint.path, body, headers)
            tokens.append(json.loads(connection.getresponse().read())["access_token"])
        connection.close()
        return tokens

    with ThreadPoolExecutor(connections) as pool:
        shares = [count // connections + (i < count % connections) for i in range(connections)]
        return [token for tokens in pool.map(some, shares) for token in tokens]


def register_users(server):
    for i in range(USERS):
        body = json.dumps({"email": f"bench{i}@example.com", "password": PASSWORD}).encode()
        try:
            request(f"{server.url}/api/v1/auth/register", body, {"Content-Type": "application/json"})
        except urllib.error.HTTPError as e:
            if e.code != 409:  # registered by the other instance on the same database
                raise


def refresh_tokens(server, count):
    """`count` sessions' refresh tokens, from logins spread over the users."""
    tokens = []
    for i in range(count):
        body = json.dumps({"email": f"bench{i % USERS}@example.com", "password": PASSWORD}).encode()
        tokens.append(request(f"{server.url}/api/v1/auth/login", body, {"Content-Type": "application/json"})["refresh_token"])
    return tokens


# ---------------------------------------------------------------- wrk

LUA_POST = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = os.getenv("BENCH_TYPE")
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
"""

# Each response's refresh token is the next request's: one chain per session, 32 in flight.
LUA_REFRESH = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local pool = {}
for token in io.lines(os.getenv("BENCH_TOKENS")) do pool[#pool + 1] = token end
request = function()
  local token = table.remove(pool)
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. (token or "exhausted"))
end
response = function(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then pool[#pool + 1] = token end
end
"""

# The tokens in BENCH_TOKENS in turn, each in an introspection request.
LUA_INTROSPECT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
local pool = {}
for token in io.lines(os.getenv("BENCH_TOKENS")) do pool[#pool + 1] = token end
local turn = 0
request = function()
  turn = turn % #pool + 1
  return wrk.format(nil, nil, nil, "token=" .. pool[turn])
end
"""

LUA_LOGIN = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local password = os.getenv("BENCH_PASSWORD")
local users = tonumber(os.getenv("BENCH_USERS"))
request = function()
  local body = string.format('{"email":"bench%d@example.com","password":"%s"}', math.random(0, users - 1), password)
  return wrk.format(nil, nil, nil, body)
end
"""


def ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out):
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk printed no result:\n{out}")

    def grab(pattern, default=None):
        m = re.search(pattern, out, re.M)
        return m.group(1) if m else default

    return {
        "rps": float(grab(r"Requests/sec:\s+([\d.]+)")),
        "requests": int(grab(r"(\d+) requests in")),
        "p50": ms(grab(r"^\s+50%\s+(\S+)")),
        "p99": ms(grab(r"^\s+99%\s+(\S+)")),
        "non2xx": int(grab(r"Non-2xx or 3xx responses: (\d+)", "0")),
        "errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", grab(r"Socket errors: (.*)", ""))),
    }


class Bench:
    def __init__(self, workdir, duration, warmup, connections, floor_binary=None):
        self.dir, self.duration, self.warmup, self.connections = workdir, duration, warmup, connections
        self.floor_binary = floor_binary
        self.reading = None  # (primitive, ms): the last floor read, until the next load
        self.rows = []
        self.scripts = {}
        for name, lua in (("post", LUA_POST), ("refresh", LUA_REFRESH), ("introspect", LUA_INTROSPECT),
                          ("login", LUA_LOGIN)):
            path = os.path.join(workdir, f"{name}.lua")
            with open(path, "w") as f:
                f.write(lua)
            self.scripts[name] = path

    def wrk(self, url, seconds, connections, script=None, env=None):
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
        if script:
            cmd[1:1] = ["-s", self.scripts[script]]
        return subprocess.Popen(cmd, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE, text=True)

    def floor_now(self, primitive):
        """`primitive`'s milliseconds on one core, read now, or the reading taken since the
        last load (one reading serves the row before it and the row after it)."""
        if self.reading is None or self.reading[0] != primitive:
            self.reading = (primitive, primitive_ms(self.floor_binary, primitive))
        return self.reading[1]

    def measure(self, workload, server, url, script=None, env=None, warm=True, beside=None, floor=None):
        """One workload against one server: a warm-up, then the measured run. `beside` runs a
        second wrk (url) during the measured run and reports it as its own row. `floor` names
        the crypto-floor primitive read right before and after the load: the row is set beside
        the faster of the two readings (this machine's speed drifts within a run)."""
        before = self.floor_now(floor) if floor else None
        self.reading = None
        if warm and self.warmup:
            self.wrk(url, self.warmup, self.connections, script, env).communicate()
        pg = server.backend == "PostgreSQL"
        cpu0, pg0 = cpu_ticks(server.pid), postgres_ticks() if pg else 0
        peak = [rss_mib(server.pid)]
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], rss_mib(server.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = self.wrk(url, self.duration, self.connections, script, env)
        side = None
        if beside:
            time.sleep(1)
            side = self.wrk(beside, max(self.duration - 2, 1), 8)
        out = load.communicate()[0]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done.set()
        sampler.join()
        stats = parse_wrk(out)
        cpu = (cpu_ticks(server.pid) - cpu0) * 1000 / TICKS
        stats.update(
            workload=workload, server=server, cpu=cpu / max(stats["requests"], 1),
            # wrk's own CPU (alone only: a second wrk beside it would be counted in).
            wrk_cpu=None if beside else (children.ru_utime + children.ru_stime - children0.ru_utime
                                         - children0.ru_stime) * 1000 / max(stats["requests"], 1),
            pg_cpu=((postgres_ticks() - pg0) * 1000 / TICKS / max(stats["requests"], 1)) if pg else None,
            rss=peak[0],
        )
        if floor:
            stats["floor_readings"] = (before, self.floor_now(floor))
            stats["floor"] = min(stats["floor_readings"])
        self.rows.append(stats)
        say(f"   {workload:<32} {server.label:<34} {stats['rps']:>9.0f} req/s  p99 {stats['p99']:.2f} ms  "
            f"CPU {stats['cpu']:.3f} ms/req  non-2xx {stats['non2xx']}"
            + (" (%s %.4f / %.4f ms before / after)" % (floor, *stats["floor_readings"]) if floor else ""))
        if side:
            side_stats = parse_wrk(side.communicate()[0])
            side_stats.update(workload=f"JWKS during {workload}", server=server, cpu=None, pg_cpu=None, rss=None,
                              wrk_cpu=None)
            self.rows.append(side_stats)
            say(f"   {side_stats['workload']:<32} {server.label:<34} {side_stats['rps']:>9.0f} req/s  p99 {side_stats['p99']:.2f} ms")
        return stats


def post_env(body, auth="", content_type="application/x-www-form-urlencoded"):
    return {"BENCH_BODY": body, "BENCH_AUTH": auth, "BENCH_TYPE": content_type}


# ---------------------------------------------------------------- report


def fmt(value, digits=2):
    return "—" if value is None else f"{value:,.{digits}f}"


def table(rows, floor):
    # What the crypto alone costs, per workload; rows with readings of their own use those.
    limits = {
        "client_credentials RS256": floor["rs256_sign_ms"],
        "client_credentials EdDSA": floor["ed25519_sign_ms"],
        "introspection": floor["rs256_verify_ms"],
        NEW_TOKENS: floor["rs256_verify_ms"],
        "refresh RS256": floor["rs256_sign_ms"],
        "refresh EdDSA": floor["ed25519_sign_ms"],
        "login": floor["argon2id_verify_ms"],
        "login flood": floor["argon2id_verify_ms"],
    }
    peers = {r["workload"]: r for r in rows if r["server"].backend is None}
    lines = [
        "| workload | server | req/s | p50 ms | p99 ms | non-2xx | CPU ms/req | PostgreSQL CPU ms/req | wrk CPU ms/req | peak RSS MiB | req/s vs peer | CPU vs peer | CPU vs bare crypto |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peer = peers.get(r["workload"]) if r["server"].backend else None
        limit = r.get("floor", limits.get(r["workload"]))
        lines.append(
            f"| {r['workload']} | {r['server'].label} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{r['non2xx'] + r['errors']} | {fmt(r['cpu'], 3)} | {fmt(r['pg_cpu'], 3)} | {fmt(r['wrk_cpu'], 3)} | {fmt(r['rss'], 1)} | "
            f"{fmt(peer and r['rps'] / peer['rps'], 2)}{'×' if peer else ''} | "
            f"{fmt(peer and r['cpu'] and r['cpu'] / peer['cpu'], 2)}{'×' if peer and r['cpu'] else ''} | "
            f"{fmt(limit and r['cpu'] and r['cpu'] / limit, 2)}{'×' if limit and r['cpu'] else ''} |"
        )
    return "\n".join(lines)


def verdicts(rows, pg_floor, servers, cores, login_cores):
    def row(workload, backend):
        return next((r for r in rows if r["workload"] == workload and r["server"].backend == backend), None)

    def against_floor(r, holds):
        """Whether `holds(ms)` for both crypto-floor readings beside `r`'s load (True), for
        neither (False), or for one only (None: the machine's speed moved across the limit)."""
        results = {holds(ms) for ms in r["floor_readings"]}
        return results.pop() if len(results) == 1 else None

    def rate(ms):
        """Logins a second that argon2id taking `ms` allows on the cores it is given."""
        return login_cores * 1000 / ms

    def ratios(cpu, r):
        before, after = r["floor_readings"]
        return f"{cpu / before:.2f}× / {cpu / after:.2f}× ({before:.3f} / {after:.3f} ms)"

    out = []

    def check(what, ok, figures, limit=None):
        """One target's verdict and figures, and for a target not met, what bounds it in this
        run where the bench measures that (`limit`)."""
        verdict = {True: "met", False: "**missed**", None: "**undecided** (the floor moved across the limit)"}[ok]
        out.append(f"- {verdict}: {what} — {figures}" + (f"; {limit}" if limit and ok is not True else ""))

    def least(server, bound, ok):
        """Whether the least server measured meets the `bound` ours missed."""
        return {True: f"{server} meets {bound}", False: f"{server} misses {bound} too",
                None: f"{server} is undecided on {bound}"}[ok]

    def refresh_bound(refresh, cc):
        """What this machine allows a refresh on PostgreSQL: PostgreSQL alone, and the cores the
        bench may use at the CPU the run's refreshes took (server, PostgreSQL and wrk)."""
        asked = 0.5 * cc["rps"]
        if pg_floor["tps"] < asked:
            return f"out of reach here: PostgreSQL alone commits these writes fewer times a second than the {asked:,.0f} asked"
        spent = refresh["cpu"] + refresh["pg_cpu"] + refresh["wrk_cpu"]
        bound = cores * 1000 / spent
        return (f"a refresh took {spent:.3f} ms of CPU in all (the server {refresh['cpu']:.3f}, PostgreSQL "
                f"{refresh['pg_cpu']:.3f}, wrk {refresh['wrk_cpu']:.3f}): {cores} cores allow at most {bound:,.0f} a "
                f"second at that cost, {100 * bound / cc['rps']:.0f} % of client_credentials, and the run reached "
                f"{100 * refresh['rps'] / bound:.0f} % of that bound")

    for backend in ("SQLite", "PostgreSQL"):
        peer, ours = row("client_credentials RS256", None), row("client_credentials RS256", backend)
        signing = row("client_credentials RS256", "signs only")
        fast = ours["rps"] >= 1.5 * peer["rps"]
        lean = against_floor(ours, lambda ms: ours["cpu"] <= 1.15 * ms)
        check(f"client_credentials RS256 ({backend}) ≥ 1.5× the peer, CPU ≤ 1.15× the bare sign",
              fast and lean,
              f"{ours['rps'] / peer['rps']:.2f}×, {ours['cpu']:.3f} ms = {ratios(ours['cpu'], ours)} of the bare sign "
              f"read right before / after the load (a bare hyper server that only signs: {signing['cpu']:.3f} ms = "
              f"{ratios(signing['cpu'], signing)})",
              least("the bare signing server", "the CPU bound",
                    against_floor(signing, lambda ms: signing["cpu"] <= 1.15 * ms)) if fast else None)
        peer, ours = row("client_credentials EdDSA", None), row("client_credentials EdDSA", backend)
        signing = row("client_credentials EdDSA", "signs only")
        check(f"client_credentials EdDSA ({backend}) ≥ 8× the peer, CPU ≤ 0.07 ms",
              ours["rps"] >= 8 * peer["rps"] and ours["cpu"] <= 0.07,
              f"{ours['rps'] / peer['rps']:.2f}×, {ours['cpu']:.3f} ms (a bare hyper server that only signs: "
              f"{signing['cpu']:.3f} ms)")
        peer, ours, new = row("introspection", None), row("introspection", backend), row(NEW_TOKENS, backend)
        check(f"introspection ({backend}) ≥ 4× the peer, CPU ≤ ¼ of the peer's",
              ours["rps"] >= 4 * peer["rps"] and ours["cpu"] <= peer["cpu"] / 4,
              f"{ours['rps'] / peer['rps']:.2f}×, {ours['cpu']:.3f} ms against {peer['cpu']:.3f} ms ({ours['cpu'] / peer['cpu']:.2f}×)"
              + (f"; with a token new to the server each time, {new['rps'] / peer['rps']:.2f}×, {new['cpu']:.3f} ms "
                 f"({new['cpu'] / peer['cpu']:.2f}×)" if new else ""))
        bare = row("JWKS", "same bytes")
        for workload in ("JWKS", "discovery"):
            peer, ours = row(workload, None), row(workload, backend)
            beside = (f" (a bare hyper server with the same bytes: {bare['rps']:,.0f}/s, p99 {bare['p99']:.2f} ms)"
                      if workload == "JWKS" else "")
            fast = ours["rps"] >= 5 * peer["rps"]
            check(f"{workload} ({backend}) ≥ 5× the peer, p99 ≤ 2 ms",
                  fast and ours["p99"] <= 2,
                  f"{ours['rps'] / peer['rps']:.2f}×, p99 {ours['p99']:.2f} ms{beside}",
                  least("the bare hyper server (the JWKS's bytes)", "p99 ≤ 2 ms", bare["p99"] <= 2) if fast else None)
        login, side = row("login", backend), row("JWKS during login flood", backend)
        before, after = map(rate, login["floor_readings"])
        check(f"login ({backend}) ≥ 90 % of bare argon2id on {login_cores} core(s), JWKS p99 ≤ 5 ms beside it",
              side["p99"] <= 5 and against_floor(login, lambda ms: login["rps"] >= 0.9 * rate(ms)),
              f"{login['rps']:.1f}/s = {100 * login['rps'] / before:.0f} % / {100 * login['rps'] / after:.0f} % of the "
              f"bare argon2id rate read right before / after the load ({before:.1f} / {after:.1f} per s), "
              f"JWKS p99 {side['p99']:.2f} ms")
    for alg in ("RS256", "EdDSA"):
        refresh, cc = row(f"refresh {alg}", "PostgreSQL"), row(f"client_credentials {alg}", "PostgreSQL")
        met = refresh["rps"] >= 0.5 * cc["rps"]
        check(f"refresh {alg} on PostgreSQL ≥ 50 % of client_credentials {alg}",
              met,
              f"{refresh['rps']:,.0f} against {cc['rps']:,.0f} req/s ({100 * refresh['rps'] / cc['rps']:.0f} %); "
              f"PostgreSQL alone commits its writes {pg_floor['tps']:,.0f} times/s "
              f"({100 * refresh['rps'] / pg_floor['tps']:.0f} % of that)",
              None if met else refresh_bound(refresh, cc))
    ours = [s for s in servers if s.backend]
    idle = max(s.idle_rss for s in ours)
    top = max(ours, key=lambda s: rss_mib(s.pid, "VmHWM"))
    peak = rss_mib(top.pid, "VmHWM")
    check("memory: resident ≤ 30 MiB idle, ≤ 100 MiB at the peak", idle <= 30 and peak <= 100,
          f"idle at most {idle:.1f} MiB, peak {peak:.1f} MiB (VmHWM over the run, {top.label} {top.alg})")
    return "\n".join(out)


def run_time():
    """The verdict on the run's own time, from scripts/bench's start (the tools it installed,
    the build, the loads): a fresh machine's time when the release build, the crates and wrk
    were all absent at its start."""
    env = os.environ
    if not env.get("BENCH_STARTED", "").isdigit() or not env.get("BENCH_BUILT", "").isdigit():
        return "- not judged: scripts/bench under 10 minutes (scripts/bench times the run; bench.py was run alone)"
    now, started, built = time.time(), int(env["BENCH_STARTED"]), int(env["BENCH_BUILT"])
    minutes = lambda s: f"{int(s) // 60} min {int(s) % 60} s"
    figures = (f"{minutes(now - started)} in all: {minutes(built - started)} before the loads (installs, PostgreSQL, "
               f"the build), {minutes(now - built)} of loads")
    there = [what for what, flag in (("the release build", "BENCH_FRESH_TREE"), ("the crates", "BENCH_FRESH_CRATES"),
                                     ("wrk", "BENCH_FRESH_WRK")) if env.get(flag) != "1"]
    if there:
        return f"- not judged (not a fresh machine: {', '.join(there)} already there): scripts/bench under 10 minutes — {figures}"
    verdict = "met" if now - started <= 600 else "**missed**"
    return f"- {verdict}: scripts/bench under 10 minutes on a fresh machine — {figures}"


def primitive_ms(binary, primitive):
    """One primitive's milliseconds on one core, timed now (crypto-floor --only)."""
    out = subprocess.run([binary, "--only", primitive], check=True, capture_output=True, text=True).stdout
    return json.loads(out)[f"{primitive}_ms"]


def crypto_floor(binary, before=None):
    """crypto-floor's milliseconds per operation; with `before`, the lower of each pair."""
    say("== what the crypto alone costs here (crypto-floor, one core)")
    floor = json.loads(subprocess.run([binary], check=True, capture_output=True, text=True).stdout)
    say("  ", json.dumps(floor))
    if before:
        floor = {k: min(v, before[k]) if isinstance(v, float) else v for k, v in floor.items()}
    return floor


# A refresh's writes without the service: one token marked used and its successor inserted,
# in one committed statement, as token-issuer does on PostgreSQL.
PG_FLOOR_SQL = """\\set n random(1, 100000)
WITH used AS (UPDATE floor_tokens SET used_at = 1 WHERE token_hash = 'seed' || :n RETURNING family_id)
INSERT INTO floor_tokens (token_hash, family_id, issued_at, expires_at)
SELECT md5(random()::text) || md5(random()::text), family_id, 1, 2 FROM used;
"""


def postgres_floor(admin_url, connections, seconds):
    """pgbench of a refresh's writes alone, as many clients as wrk has connections: the rate
    PostgreSQL commits them at here, and its CPU per commit."""
    say(f"== PostgreSQL alone: a refresh's writes, committed (pgbench -c{connections})")
    url = fresh_database(admin_url, "token_issuer_floor")
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc",
                    "CREATE TABLE floor_tokens (token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, "
                    "issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT); "
                    "INSERT INTO floor_tokens SELECT 'seed' || g, md5(g::text), 1, 2 FROM generate_series(1, 100000) g"],
                   check=True, capture_output=True)
    script = os.path.join(ROOT, "target", "bench", "floor.sql")
    with open(script, "w") as f:
        f.write(PG_FLOOR_SQL)
    load = subprocess.Popen(["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "1",
                             "-T", str(seconds), "-f", script, url], stdout=subprocess.PIPE, text=True)
    # PostgreSQL's CPU is read while pgbench's backends live: once they exit, theirs is gone.
    time.sleep(1)
    pg0, t0 = postgres_ticks(), time.monotonic()
    time.sleep(seconds - 2)
    pg_cpu_per_s = (postgres_ticks() - pg0) * 1000 / TICKS / (time.monotonic() - t0)
    out = load.communicate()[0]
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    floor = {"tps": tps, "pg_cpu": pg_cpu_per_s / tps}
    say(f"   {floor['tps']:,.0f} commits/s, PostgreSQL CPU {floor['pg_cpu']:.3f} ms each")
    return floor


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem / 1024 / 1024:.0f} GiB, {platform.system()} {platform.release()}"


# ---------------------------------------------------------------- profiles

def login_request(server):
    """The login load's URL, wrk script and environment (the users registered beforehand)."""
    return f"{server.url}/api/v1/auth/login", "login", LOGIN_ENV


def login_load(server):
    register_users(server)
    return login_request(server)


def client_credentials_load(s):
    return s.token_endpoint, "post", post_env(client_credentials_body(), basic(CLIENT_ID, s.secret))


def tokens_env(path, tokens):
    """`tokens` written to `path`, one a line, for a wrk script that reads BENCH_TOKENS."""
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return {"BENCH_TOKENS": path}


def refresh_load(s):
    """Refresh chains, each response's token the next request's, enough for 64 connections."""
    register_users(s)
    path = os.path.join(ROOT, "target", "bench", "profile", "refresh-tokens.txt")
    return s.token_endpoint, "refresh", tokens_env(path, refresh_tokens(s, 64))


# Workloads that `scripts/bench --profile` records: (signing algorithm, how to load the server).
PROFILED = {
    "jwks": ("RS256", lambda s: (s.jwks_uri, None, None)),
    "client-credentials-eddsa": ("EdDSA", client_credentials_load),
    "client-credentials-rs256": ("RS256", client_credentials_load),
    "introspection": ("RS256", lambda s: (s.introspection_endpoint, "post", post_env(
        f"token={client_token(s, s.secret)}", basic(CLIENT_ID, s.secret)))),
    "login": ("EdDSA", login_load),
    "refresh-rs256": ("RS256", refresh_load),
    "refresh-eddsa": ("EdDSA", refresh_load),
}


def profile(args):
    """perf record of token-issuer (on SQLite, or PostgreSQL) under one workload, as a flamegraph SVG."""
    alg, load = PROFILED[args.profile]
    workdir = os.path.join(ROOT, "target", "bench", "profile")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    if args.on == "PostgreSQL":
        database = fresh_database(args.postgres, "token_issuer_profile")
    else:
        database = f"sqlite://{os.path.join(workdir, 'bench.db')}"
    ours = Ours(args.binary, args.on, workdir, database)
    try:
        server = ours.start(alg)
        server.secret = ours.secret
        url, script, env = load(server)
        bench = Bench(workdir, args.duration, args.warmup, args.connections)
        # A refresh token is good once: a warm-up would spend the chains the measured run starts from.
        if script != "refresh":
            bench.wrk(url, args.warmup, args.connections, script, env).communicate()
        data = os.path.join(workdir, "perf.data")
        # cpu-clock: virtual machines often lack hardware counters. DWARF call graphs: the
        # release build has no frame pointers; perf unwinds through .eh_frame.
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "249", "--call-graph", "dwarf,8192",
                                 "-p", str(server.pid), "-o", data, "--", "sleep", str(args.duration)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stats = bench.measure(args.profile, server, url, script, env, warm=False)
        perf.wait()
        say(f"   {stats['rps']:.0f} req/s while recorded (perf slows the server)")
        folded = subprocess.run(f"perf script --no-inline -i {data} 2>/dev/null | inferno-collapse-perf", shell=True,
                                check=True, capture_output=True, text=True).stdout
        with open(os.path.join(ROOT, "target", "bench", f"{args.profile}.folded"), "w") as f:
            f.write(folded)
        title = f"token-issuer {args.profile} ({alg}, {args.on}): {stats['cpu']:.3f} CPU-ms per request, {time.strftime('%Y-%m-%d')}"
        with open(args.svg, "w") as out:
            subprocess.run(["inferno-flamegraph", "--title", title, "--width", "1600", "--minwidth", "0.5"], input=folded,
                           check=True, stdout=out, text=True)
        say(f"== {args.svg}")
    finally:
        ours.stop()


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--floor", required=True, help="the crypto-floor binary")
    parser.add_argument("--peer", required=True, help="node-oidc-provider's folder")
    parser.add_argument("--postgres", required=True, help="an admin URL of the local PostgreSQL")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", choices=sorted(PROFILED), help="only perf-record this workload")
    parser.add_argument("--on", choices=("SQLite", "PostgreSQL"), default="SQLite", help="--profile's database")
    parser.add_argument("--svg", help="where --profile writes its flamegraph")
    args = parser.parse_args()
    if args.profile:
        return profile(args)

    started = time.monotonic()
    workdir = os.path.join(ROOT, "target", "bench")
    shutil.rmtree(os.path.join(workdir, "sqlite"), ignore_errors=True)
    os.makedirs(os.path.join(workdir, "sqlite"), exist_ok=True)
    os.makedirs(os.path.join(workdir, "postgres"), exist_ok=True)
    shutil.rmtree(os.path.join(workdir, "postgres", "keys"), ignore_errors=True)

    floor = crypto_floor(args.floor)

    say("== starting node-oidc-provider (RS256, EdDSA) and token-issuer (SQLite, PostgreSQL) × (RS256, EdDSA)")
    peer = Peer(args.peer, os.path.join(workdir, "peer"))
    installations = []
    try:
        servers = {("peer", alg): peer.start(alg) for alg in ("RS256", "EdDSA")}
        for backend, url in (
            ("SQLite", f"sqlite://{os.path.join(workdir, 'sqlite', 'bench.db')}"),
            ("PostgreSQL", fresh_database(args.postgres, "token_issuer_bench")),
        ):
            ours = Ours(args.binary, backend, os.path.join(workdir, backend.lower() if backend == "SQLite" else "postgres"), url)
            installations.append(ours)
            for alg in ("RS256", "EdDSA"):
                servers[(backend, alg)] = ours.start(alg)
                servers[(backend, alg)].secret = ours.secret
        for alg in ("RS256", "EdDSA"):
            servers[("peer", alg)].secret = CLIENT_SECRET_PEER
        time.sleep(1)
        for server in servers.values():
            server.idle_rss = rss_mib(server.pid)
        say("   idle RSS: " + ", ".join(f"{s.label} {s.alg} {s.idle_rss:.1f} MiB" for s in servers.values()))

        bench = Bench(workdir, args.duration, args.warmup, args.connections, args.floor)
        order = ("peer", "SQLite", "PostgreSQL")
        say(f"== wrk -t1 -c{args.connections} -d{args.duration}s after a {args.warmup} s warm-up, servers in turn")
        with urllib.request.urlopen(servers[("SQLite", "RS256")].jwks_uri) as resp:
            bare = HttpFloor(os.path.join(os.path.dirname(args.floor), "http-floor"), resp.read(), workdir)
        try:
            for workload, path in (("JWKS", "jwks_uri"), ("discovery", None)):
                for key in order:
                    s = servers[(key, "RS256")]
                    url = getattr(s, path) if path else f"{s.url}/.well-known/openid-configuration"
                    bench.measure(workload, s, url)
                if workload == "JWKS":
                    bench.measure(workload, bare.jwks, bare.jwks.jwks_uri)
            for alg in ("RS256", "EdDSA"):
                # Ours and the bare signer are set beside the RSA floor (a target); the peer is not.
                floor = "rs256_sign" if alg == "RS256" else None
                for s in [servers[(key, alg)] for key in order] + [bare.signing[alg]]:
                    bench.measure(f"client_credentials {alg}", s, *client_credentials_load(s),
                                  floor=floor if s.backend else None)
        finally:
            bare.stop()
        for key in order:
            s = servers[(key, "RS256")]
            # The peer introspects only its opaque tokens; ours, the JWTs it issues.
            token = client_token(s, s.secret, OPAQUE_RESOURCE if key == "peer" else RESOURCE)
            bench.measure("introspection", s, s.introspection_endpoint, "post",
                          post_env(f"token={token}", basic(CLIENT_ID, s.secret)))
        # The rows above introspect one token again and again, as a resource server does on
        # each call the token comes with, and ours checks its signature once. Here every
        # request checks one: more tokens in turn than the server keeps (4,096).
        s = servers[("SQLite", "RS256")]
        env = tokens_env(os.path.join(workdir, "introspect-tokens.txt"), client_tokens(s, s.secret, 8192))
        bench.measure(NEW_TOKENS, s, s.introspection_endpoint, "introspect",
                      dict(env, BENCH_AUTH=basic(CLIENT_ID, s.secret)))
        for backend in ("SQLite", "PostgreSQL"):
            register_users(servers[(backend, "RS256")])
        for alg in ("RS256", "EdDSA"):
            for backend in ("SQLite", "PostgreSQL"):
                s = servers[(backend, alg)]
                # Enough sessions for every connection, and some to spare for the ones lost
                # when wrk stops with requests in flight.
                env = tokens_env(os.path.join(workdir, f"refresh-{backend}-{alg}.txt"),
                                 refresh_tokens(s, args.connections + 8))
                bench.measure(f"refresh {alg}", s, s.token_endpoint, "refresh", env, warm=False)
        for backend in ("SQLite", "PostgreSQL"):
            s = servers[(backend, "EdDSA")]
            # Alone for the rate (the JWKS load would take CPU from argon2 on two cores), then
            # again as a flood with JWKS requests beside it, for their latency (that run's
            # CPU per login includes the JWKS's).
            bench.measure("login", s, *login_request(s), floor="argon2id_verify")
            bench.measure("login flood", s, *login_request(s), warm=False, beside=s.jwks_uri)

        # This machine's speed drifts: the floor is measured again after the loads, and the
        # faster of the two counts (the stricter ratio).
        floor = crypto_floor(args.floor, floor)
        pg_floor = postgres_floor(args.postgres, args.connections, args.duration)

        cores = len(os.sched_getaffinity(0))
        login_cores = max(cores - 1, 1)  # token-issuer leaves one core to the runtime
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        print(f"Measured {time.strftime('%Y-%m-%d')} at commit {commit} on {machine()}, with `scripts/bench` "
              f"(release build; wrk -t1 -c{args.connections}, {args.duration} s runs after a {args.warmup} s warm-up; "
              f"servers in turn; CPU from /proc of the server process). "
              f"Bare crypto on one core: RSA-2048 sign {floor['rs256_sign_ms']:.3f} ms, "
              f"Ed25519 sign {floor['ed25519_sign_ms']:.4f} ms, RS256 verify {floor['rs256_verify_ms']:.4f} ms, "
              f"argon2id verify {floor['argon2id_verify_ms']:.1f} ms ({floor['argon2']}); the faster of two runs, "
              f"before and after the loads; our RS256 and login rows and the bare signing server's are set beside "
              f"RSA-2048 or argon2id read right before and after their own load instead (the faster of the two in "
              f"the table; a verdict that the two readings decide differently is printed as undecided). "
              f"PostgreSQL alone commits a refresh's writes (pgbench, "
              f"{args.connections} clients) {pg_floor['tps']:,.0f} times/s, at {pg_floor['pg_cpu']:.3f} ms of its CPU each.\n")
        print(table(bench.rows, floor))
        print("\nIdle resident set: " + ", ".join(f"{s.label} {s.alg} {s.idle_rss:.1f} MiB" for s in servers.values()) + ".\n")
        print("Targets:\n")
        print(verdicts(bench.rows, pg_floor, list(servers.values()), cores, login_cores))
        print(run_time())
        say(f"== done in {time.monotonic() - started:.0f} s")
    finally:
        peer.stop()
        for ours in installations:
            ours.stop()


if __name__ == "__main__":
    main()
