"""The real PostgreSQL behind the database workloads and the PostgreSQL storage workloads:
fixtures, the raw SQL baseline, leak checks.

Every server under test, and the raw baseline, gets its own database and its own admin role
(LOGIN CREATEROLE, a random password, owner of the database), created here through `psql` as the
superuser and dropped at the end of the run. All names carry the run's id, so a run never touches
another run's (or another test's) roles:

- database `tresor_bench_<run>_<label>`, admin role `tresor_bench_<run>_<label>_admin`;
- the servers' dynamic role is `<letter><run>` (7 characters, so that OpenBao's default username
  template, which keeps 8 characters of the role name, writes all of it into every PostgreSQL
  user it creates: `v-<display>-<role>-<random>-<unix time>`);
- the raw baseline's users are `tresor_bench_<run>_cycle_<client>`;
- the storage workloads' servers keep their data in `tresor_bench_<run>_openbao_pg`,
  `…_tresor_pg` and `…_tresor_pg_ha`, each owned by its own LOGIN role (no CREATEROLE).

A leak is a PostgreSQL role whose name contains one of these markers after its lease (or its raw
cycle) was revoked. PostgreSQL is reached as `psql -h HOST -p PORT -U SUPERUSER` (trust auth, as on
the project's machines); `pgbench` and `psql` come from Debian's `postgresql-client` (and
`postgresql-contrib` on releases where pgbench is packaged with the server), installed when
missing.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from . import procs

PREFIX = "tresor_bench_"
# Creation as in vault-benchmark's PostgreSQL test and performance.md, without grants: the raw
# baseline runs exactly this statement, so the ratio isolates what each server adds around it.
CREATION = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
            "VALID UNTIL '{{expiration}}';")


# OpenBao's postgresql storage table, from its documentation ("Manually creating tables"),
# with the default names. No HA table: OpenBao runs without ha_enabled here.
OPENBAO_TABLES = (
    'CREATE TABLE openbao_kv_store (parent_path TEXT COLLATE "C" NOT NULL, '
    'path TEXT COLLATE "C", key TEXT COLLATE "C", value BYTEA, '
    'CONSTRAINT openbao_kv_store_pkey PRIMARY KEY (path, key)); '
    'CREATE INDEX openbao_kv_store_idx ON openbao_kv_store (parent_path);'
)


class Unavailable(Exception):
    """PostgreSQL or its client tools cannot be used; str() says why."""


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps pgbench beside the server binaries, off PATH, on some releases.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def ensure_tools(log) -> tuple[str, str]:
    """psql and pgbench, installing Debian's packages if either is missing (idempotent)."""
    psql, pgbench = _find_tool("psql"), _find_tool("pgbench")
    if psql and pgbench:
        return psql, pgbench
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for package in ("postgresql-client", "postgresql-contrib"):
        log(f"==> installing {package} from Debian (psql / pgbench missing)")
        install = sudo + ["apt-get", "install", "-y", package]
        if subprocess.run(install, env=env).returncode != 0:  # stale package lists: update once
            subprocess.run(sudo + ["apt-get", "update"], env=env, check=False)
            subprocess.run(install, env=env, check=False)
        psql, pgbench = _find_tool("psql"), _find_tool("pgbench")
        if psql and pgbench:
            return psql, pgbench
    raise Unavailable("psql and pgbench are needed (Debian: postgresql-client, postgresql-contrib)")


@dataclass
class Fixture:
    """One database and its admin role, for one server or for the raw baseline."""
    label: str
    database: str
    admin: str
    password: str


class Cluster:
    """The PostgreSQL server, reached as its superuser, and everything this run created in it."""

    def __init__(self, host: str, port: int, superuser: str, log):
        self.host, self.port, self.superuser = host, port, superuser
        self.log = log
        self.run_id = secrets.token_hex(3)  # 6 hex digits
        self.psql_bin, self.pgbench_bin = ensure_tools(log)
        self.fixtures: list[Fixture] = []
        self.markers: list[str] = []
        self.version = self.query("SHOW server_version").strip()
        self._postmaster = self._find_postmaster()

    # ---- SQL through psql ----

    def query(self, sql: str, database: str = "postgres") -> str:
        argv = [self.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                "-p", str(self.port), "-U", self.superuser, "-d", database, "-c", sql]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        if done.returncode != 0:
            raise Unavailable(f"psql -h {self.host} -p {self.port} -U {self.superuser}: "
                              f"{done.stderr.strip()[:300]}")
        return done.stdout

    def describe(self) -> str:
        return f"PostgreSQL {self.version} at {self.host}:{self.port}"

    # ---- fixtures ----

    def fixture(self, label: str, createrole: bool = True) -> Fixture:
        """A fresh database owned by a fresh admin role that may create and drop roles (with
        `createrole`; a storage backend's role needs only to own its database)."""
        name = f"{PREFIX}{self.run_id}_{label}"
        fixture = Fixture(label, name, f"{name}_admin", secrets.token_urlsafe(18))
        self.fixtures.append(fixture)  # before CREATE: cleanup() drops whatever got created
        self.query(f"CREATE ROLE {fixture.admin} WITH LOGIN{' CREATEROLE' if createrole else ''} "
                   f"PASSWORD '{fixture.password}'")
        self.query(f"CREATE DATABASE {fixture.database} OWNER {fixture.admin}")
        return fixture

    def storage_url(self, fixture: Fixture) -> str:
        """A storage backend's connection_url: the fixture's role and database, no TLS for
        either server (both would try it first by default, and the comparison is of the storage
        path, not of TLS). token_urlsafe passwords need no percent-encoding."""
        return (f"postgres://{fixture.admin}:{fixture.password}@{self.host}:{self.port}/"
                f"{fixture.database}?sslmode=disable")

    def create_openbao_tables(self, fixture: Fixture) -> None:
        """OpenBao's storage table and index as its documentation gives them
        (website/content/docs/configuration/storage/postgresql.mdx), owned by the fixture's
        role. OpenBao 2.7 would create them itself when its role may; creating them first is
        what its documentation asks of a role that may not, and what issue 13 asks for."""
        self.query(f"SET ROLE {fixture.admin}; " + OPENBAO_TABLES, database=fixture.database)

    def settle(self, fixture: Fixture) -> None:
        """Before every run of a PostgreSQL storage workload: VACUUM the server's database (the
        write workload leaves dead row versions; autovacuum may be off) and CHECKPOINT (every
        run then starts right after a checkpoint: the same full-page writes, and no timed
        checkpoint falls into the run, as checkpoint_timeout counts from this one). A failure
        is logged, not raised: the run itself then shows what PostgreSQL's state does to it."""
        for sql, database in (("VACUUM", fixture.database), ("CHECKPOINT", "postgres")):
            try:
                self.query(sql, database=database)
            except Unavailable as err:
                self.log(f"!! {sql} before a run: {err}")

    def free_connections(self) -> int | None:
        """Connections PostgreSQL would still accept from ordinary roles, or None if unknown."""
        try:
            return int(self.query(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).strip())
        except (Unavailable, ValueError):
            return None

    def settings(self) -> str:
        """The settings that decide what a commit costs, for the report."""
        names = ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers",
                 "max_connections", "autovacuum")
        values = self.query("SELECT name || ' = ' || current_setting(name) FROM pg_settings WHERE name IN ("
                            + ", ".join(f"'{n}'" for n in names) + ") ORDER BY name")
        return ", ".join(f"`{line}`" for line in values.splitlines() if line)

    def role_name(self, letter: str) -> str:
        """The servers' dynamic role: a letter and the run id, also its leak marker."""
        name = f"{letter}{self.run_id}"
        self.markers.append(name)
        return name

    def connection_url(self, fixture: Fixture) -> str:
        return (f"postgresql://{{{{username}}}}:{{{{password}}}}@{self.host}:{self.port}/"
                f"{fixture.database}?sslmode=disable")

    def roles_containing(self, marker: str) -> list[str]:
        """PostgreSQL roles whose name contains `marker` (leaks, once everything is revoked)."""
        if not re.fullmatch(r"[a-z0-9_]+", marker):
            raise ValueError(f"bad marker {marker!r}")
        out = self.query(f"SELECT rolname FROM pg_roles WHERE strpos(rolname, '{marker}') > 0 "
                         f"ORDER BY rolname")
        return [line for line in out.splitlines() if line]

    def vacuum_catalogs(self) -> None:
        """Role churn leaves dead rows in the shared catalogs, and autovacuum may be off (it is on
        this project's machines): every measured run starts from vacuumed catalogs, whoever ran
        before it."""
        for table in ("pg_authid", "pg_auth_members", "pg_shdepend", "pg_db_role_setting"):
            self.query(f"VACUUM {table}")

    def cleanup(self) -> list[str]:
        """Drop every role and database this run created; returns the dynamic roles that were
        still there (already reported as leaks by the run, or left by an interrupted run)."""
        left = []
        markers = self.markers + [f"{PREFIX}{self.run_id}_cycle_"]
        for marker in markers:
            for role in self.roles_containing(marker):
                left.append(role)
                self._try(f'DROP ROLE IF EXISTS "{role}"')
        for fixture in reversed(self.fixtures):
            self._try("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      f"WHERE datname = '{fixture.database}' AND pid <> pg_backend_pid()")
            self._try(f"DROP DATABASE IF EXISTS {fixture.database}")
            self._try(f"DROP ROLE IF EXISTS {fixture.admin}")
        return left

    def _try(self, sql: str) -> None:
        try:
            self.query(sql)
        except Unavailable as err:
            self.log(f"!! cleanup: {err}")

    # ---- CPU accounting ----

    def _find_postmaster(self) -> int | None:
        """The postmaster's pid, if it runs on this machine and /proc shows it: the parent of
        the checkpointer."""
        try:
            pid = int(self.query("SELECT pid FROM pg_stat_activity "
                                 "WHERE backend_type = 'checkpointer'").strip())
            with open(f"/proc/{pid}/stat") as stat:
                return int(stat.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, Unavailable):
            return None

    def cpu_ticks(self) -> int | None:
        """CPU jiffies of the whole PostgreSQL server: the postmaster, its reaped children
        (cutime/cstime: backends that exited) and its live children. None if not visible."""
        if self._postmaster is None:
            return None
        try:
            with open(f"/proc/{self._postmaster}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total = sum(int(v) for v in fields[11:15])
        except OSError:
            return None
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == self._postmaster:
                total += int(fields[11]) + int(fields[12])
        return total


# ---- the raw SQL baseline ----

class RawBaseline:
    """`CREATE ROLE … VALID UNTIL` + `DROP ROLE` cycles, measured with pgbench: each client runs
    the two statements (two autocommit transactions) over and over, on one connection, with its
    own role name. The creation statement is the servers' (CREATION), with a fixed 20-character
    password that PostgreSQL hashes with its password_encryption (SCRAM by default), as it does
    for the passwords the servers send."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.fixture = cluster.fixture("raw")
        self.workdir = tempfile.mkdtemp(prefix="tresor-bench-pgbench-")
        self.script = os.path.join(self.workdir, "cycle.sql")
        name = f"{PREFIX}{cluster.run_id}_cycle_:client_id"
        create = (CREATION.replace("{{name}}", name)
                  .replace("{{password}}", "Aa1-" + secrets.token_hex(8))
                  .replace("{{expiration}}", "2099-01-01 00:00:00+0000"))
        with open(self.script, "w") as out:
            out.write(create + "\n" + f'DROP ROLE "{name}";\n')

    def statements(self) -> str:
        with open(self.script) as f:
            return f.read().strip()

    def run(self, clients: int, threads: int, seconds: int, pin: str | None) -> tuple[dict, str]:
        """One pgbench run; returns its figures (cycles/s, mean latency, failures) and output."""
        argv = (["taskset", "-c", pin] if pin else []) + [
            self.cluster.pgbench_bin, "-n", "-f", self.script, "-c", str(clients),
            "-j", str(max(1, min(threads, clients))), "-T", str(seconds),
            "-h", self.cluster.host, "-p", str(self.cluster.port), "-U", self.fixture.admin,
            self.fixture.database]
        env = dict(os.environ, PGPASSWORD=self.fixture.password)
        proc = procs.spawn(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
        output = proc.communicate()[0].decode(errors="replace")
        procs.forget(proc)
        figures = {}
        for key, pattern in (("tps", r"tps = ([0-9.]+) \(without initial connection time\)"),
                             ("latency_ms", r"latency average = ([0-9.]+) ms"),
                             ("processed", r"number of transactions actually processed: (\d+)"),
                             ("failed", r"number of failed transactions: (\d+)")):
            found = re.search(pattern, output)
            if found:
                figures[key] = float(found.group(1))
        if proc.returncode != 0 or "tps" not in figures:
            figures.pop("tps", None)
        return figures, output

    def leaked(self) -> list[str]:
        return self.cluster.roles_containing(f"{PREFIX}{self.cluster.run_id}_cycle_")

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
