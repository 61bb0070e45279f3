"""The sandbox a run executes in: bubblewrap (bwrap) over Linux namespaces.

What a run sees there (each command of it, under its supervisor):

* its own checked-out tree, read-write, at the same path as outside;
* its venv and Ansible collections (built under the data dir), read-only;
* the gateway's own Python environment (Ansible runs from it), read-only;
* a private /tmp (and /var/tmp) and a private, empty HOME, both in its run folder;
* the system read-only: /usr, /bin, /sbin, /lib*, /etc, /opt, /sys; a /proc of its own pid
  namespace and a minimal /dev;
* the network: `[execution] network = isolated` (the default, where slirp4netns is installed) gives it a network
  namespace of its own joined to the outside by slirp4netns (launch.py): it reaches what the machine reaches
  (devices, APIs, registries) but not the machine's own loopback services (etcd, the gateway's port);
  `host` is the gateway's own network, loopback included (the weaker choice, said at start and in
  `gateway config`).

What it does not see: the data dir (the database, the secrets key, other runs, clones, snapshots,
caches), HOME, the gateway's processes, and the key files the configuration names, hidden even
where they lie inside a folder that is shown.  It holds no capabilities, even as root, and cannot
gain any (bwrap --cap-drop ALL, no_new_privs).  When the gateway is root, a run is moreover another user:
`[execution] run_as_user` (nobody by default), whom the supervisor becomes for good before the command starts
(supervisor.py --user); the run's own folders are given to that user, and the gateway removes them after.
Its memory is bounded by `[execution] memory_limit` (memory.py).

The builds of a run's dependencies (pip and ansible-galaxy, which run code of the repository) execute in
the same sandbox (venvs.py): the run's tree, the gateway's Python, the environment being built read-write, a
private /tmp and HOME, the network (isolated the same way: registries are reached); the hidden paths nowhere;
as the same unprivileged user.

`[execution] sandbox`: ``auto`` uses bwrap where it works (probed once: some containers allow no
namespaces) and says when it does not; ``bwrap`` requires it (runs are refused without it);
``none`` runs without one.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

from .launch import Launch
from .memory import MemoryLimit

MODES = ("auto", "bwrap", "none")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")
PROBE_TIMEOUT = 30.0
INSTALL = "install the bubblewrap package"
SHOWN = "runs see their tree, their venv, a private /tmp and HOME, and the system read-only"
NETWORKS = ("isolated", "host")
SLIRP = "slirp4netns"
SLIRP_DNS = "10.0.2.3"  # slirp4netns's DNS forwarder, for a machine whose resolver is on its loopback
RESOLV = "/etc/resolv.conf"
NOBODY = (65534, 65534)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _way_to(path: str) -> list[str]:
    """bwrap options making each folder above `path` (those already there stay as they are) with mode 0755."""
    args: list[str] = []
    for folder in reversed(Path(path).parents[:-1]):  # not "/"
        args += ["--perms", "0755", "--dir", str(folder)]
    return args


def _forms(path: str | Path) -> list[str]:
    """The path as given (absolute) and as it really is, without repeats."""
    given = os.path.abspath(os.path.expanduser(str(path)))
    real = os.path.realpath(given)
    return [given] if real == given else [given, real]


def _loopback_resolver() -> bool:
    """Whether the machine's resolv.conf names a nameserver on its loopback (not there for an isolated run)."""
    try:
        lines = Path(RESOLV).read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                if ipaddress.ip_address(parts[1].split("%")[0]).is_loopback:
                    return True
            except ValueError:
                continue
    return False


def _passwd_with_home(uid: int, gid: int, home: Path) -> str:
    """The machine's /etc/passwd with the run's user's home (and a shell) made the run's own HOME; the user is
    added when the machine does not know the uid."""
    try:
        lines = Path("/etc/passwd").read_text().splitlines()
    except OSError:
        lines = []
    out, found = [], False
    for line in lines:
        fields = line.split(":")
        if len(fields) == 7 and fields[2] == str(uid) and not found:
            fields[5], fields[6], found = str(home), "/bin/sh", True
            line = ":".join(fields)
        out.append(line)
    if not found:
        out.append(f"gateway-run:x:{uid}:{gid}:gateway run:{home}:/bin/sh")
    return "\n".join(out) + "\n"


def _resolve_user(spec: str) -> tuple[int, int] | str:
    """run_as_user -> (uid, gid), or why it names nobody known here."""
    if ":" in spec:
        uid, gid = spec.split(":", 1)
        return int(uid), int(gid)
    if spec.isdigit():
        try:
            return int(spec), pwd.getpwuid(int(spec)).pw_gid
        except KeyError:
            return int(spec), int(spec)
    try:
        entry = pwd.getpwnam(spec)
    except KeyError:
        if spec == "nobody":
            return NOBODY
        return f"[execution] run_as_user = {spec}: no such user on this machine (use a uid:gid such as 65534:65534)"
    return entry.pw_uid, entry.pw_gid


class Sandbox:
    def __init__(self, mode: str = "auto", hidden: Iterable[str | Path] = (), run_as_user: str = "nobody",
                 network: str = "isolated", memory_limit: int = 0):
        """`run_as_user`: whom runs become when the gateway is root; `network`: isolated or host;
        `memory_limit`: bytes a run may use (0: no bound)."""
        if mode not in MODES:
            raise ValueError(f"sandbox mode {mode!r}: expected one of {', '.join(MODES)}")
        if network not in NETWORKS:
            raise ValueError(f"network {network!r}: expected one of {', '.join(NETWORKS)}")
        self.mode = mode
        self.hidden = [form for path in hidden if str(path) for form in _forms(path)]
        self.bwrap = ""
        self._problem: str | None = None
        self.run_as_user = run_as_user
        self.network = network
        self.memory = MemoryLimit(memory_limit)
        self.slirp = (shutil.which(SLIRP) or "") if network == "isolated" else ""
        self._user: tuple[int, int] | str | None = None

    # ------------------------------------------------------------ is it there
    def problem(self) -> str:
        """'' when bwrap works on this machine; else why not, in a few words.  Probed once."""
        if self._problem is None:
            self._problem = self._probe()
        return self._problem

    def _probe(self) -> str:
        found = shutil.which("bwrap")
        if not found:
            return "bwrap not found on PATH"
        try:
            result = subprocess.run([found, *self._system(), "--", "true"], stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap cannot run here ({exc})"
        if result.returncode != 0:
            lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            return f"bwrap cannot run here ({lines[-1] if lines else f'exit code {result.returncode}'})"
        self.bwrap = found
        return ""

    @property
    def active(self) -> bool:
        """Whether runs execute in bwrap."""
        return self.mode != "none" and not self.problem()

    def status(self) -> str:
        """One line for `gateway config` and the daemon's log: which sandbox runs get, and why."""
        if self.mode == "none":
            return "none (sandbox = none): runs can read everything the gateway's user can"
        if not self.problem():
            user = self.user()
            who = (f", as uid {user[0]} gid {user[1]} (run_as_user = {self.run_as_user})" if user
                   else f" ({self._user_problem()})" if self._user_problem() and os.geteuid() == 0 else "")
            return f"bwrap ({self.bwrap}): {SHOWN}{who}, without capabilities"
        if self.mode == "bwrap":
            return f"unavailable: {self.refusal()}"
        return f"none: {self.problem()}; runs are not sandboxed and can read the data dir ({INSTALL})"

    def warning(self) -> str:
        """For `auto` without a working bwrap: the line said when a run starts (local mode); '' otherwise."""
        if self.mode != "auto" or not self.problem():
            return ""
        return (f"sandbox: {self.problem()}: this run is not sandboxed and can read the gateway's data dir "
                f"({INSTALL}, or set [execution] sandbox = none)")

    def user(self) -> tuple[int, int] | None:
        """(uid, gid) a sandboxed run becomes: when the gateway is root (and run_as_user is not root); None
        otherwise (a run keeps the gateway's uid, without capabilities)."""
        if os.geteuid() != 0 or not self.active:
            return None
        if self._user is None:
            self._user = _resolve_user(self.run_as_user)
        if isinstance(self._user, str) or self._user[0] == 0:
            return None
        return self._user

    def _user_problem(self) -> str:
        self.user()
        return self._user if isinstance(self._user, str) else ""

    def give(self, *paths: Path) -> None:
        """Make the run's own folders (and all in them) the run's user's, where runs become another user."""
        user = self.user()
        if user is None:
            return
        for path in paths:
            os.lchown(path, *user)
            for folder, dirs, files in os.walk(path):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(folder, name), *user)

    def isolated(self) -> bool:
        """Whether sandboxed runs get the isolated network."""
        return self.active and bool(self.slirp)

    def launch(self, memory: bool = True, command_waits: bool = False) -> Launch | None:
        """What joins one sandboxed process before its command starts (None: nothing does): the isolated
        network, and with `memory` the run's memory cgroup; `command_waits`: see Launch."""
        if not self.active:
            return None
        bound = self.memory if memory and self.memory.cgroup_parent() is not None else None
        if not self.isolated() and bound is None:
            return None
        return Launch(self.slirp or None, bound, command_waits)

    def network_status(self) -> str:
        """One line for `gateway config` and the daemon's log: which network runs get."""
        if not self.active:
            return "host: runs are not sandboxed and reach this machine's loopback services"
        if self.isolated():
            return (f"isolated ({SLIRP} {self.slirp}): runs reach the network but not this machine's loopback "
                    f"services")
        if self.network == "host":
            return ("host (network = host): runs reach this machine's loopback services too (etcd, the "
                    "gateway's own port): the weaker choice")
        return (f"host: {SLIRP} not found on PATH: runs reach this machine's loopback services too "
                f"(install the {SLIRP} package, or set network = host to say so)")

    def network_warning(self) -> str:
        """The line said when a run starts in local mode with the host's network; '' otherwise."""
        if not self.active or self.isolated():
            return ""
        return f"network: {self.network_status()}"

    def refusal(self) -> str:
        """For `bwrap` without a working bwrap, or a run_as_user that names nobody here: why runs are refused;
        '' otherwise."""
        if self.active and self._user_problem():
            return f"{self._user_problem()}: runs are refused"
        if self.mode != "bwrap" or not self.problem():
            return ""
        return (f"[execution] sandbox = bwrap, but {self.problem()}: runs are refused "
                f"({INSTALL}, or set sandbox = auto or none)")

    # ------------------------------------------------------------ the command line
    def _system(self) -> list[str]:
        """What every sandbox has: its namespaces, the system read-only, /proc and /dev of its own."""
        args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--new-session"]
        for folder in SYSTEM_DIRS:
            if os.path.islink(folder):
                args += ["--symlink", os.readlink(folder), folder]
            elif os.path.isdir(folder):
                args += ["--ro-bind", folder, folder]
        resolv = "/etc/resolv.conf"  # often a link into /run, which is not shown
        if os.path.islink(resolv) and os.path.exists(resolv):
            real = os.path.realpath(resolv)
            if not any(_inside(real, folder) for folder in SYSTEM_DIRS):
                args += ["--ro-bind", real, real]
        # /dev/shm: a private one every user may write (Python's multiprocessing, Ansible's workers need it)
        return [*args, "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]

    def command(self, *, tree: Path, tmp: Path, home: Path, cwd: str, readable: Iterable[str | Path],
                writable: Iterable[str | Path] = ()) -> list[str]:
        """The bwrap command line (ending with "--") a command of a run starts with: `tree` read-write,
        `tmp` as /tmp and /var/tmp, `home` read-write, `readable` (files or folders) read-only, `writable`
        (existing folders: where a build installs) read-write, the hidden paths nowhere.  [] when runs are
        not sandboxed."""
        if not self.active:
            return []
        args = [self.bwrap, *self._system(), "--cap-drop", "ALL"]
        if self.user() is not None:  # what the supervisor needs to become the user, and then drops
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        args += ["--bind", str(tmp), "/tmp", "--bind", str(tmp), "/var/tmp"]
        if self.user() is not None:  # the run's user's home is its HOME (ssh and Ansible look it up there)
            passwd = tmp.parent / "passwd"
            passwd.write_text(_passwd_with_home(*self.user(), home))
            args += ["--ro-bind", str(passwd), "/etc/passwd"]
        if self.isolated() and _loopback_resolver():
            resolv = tmp.parent / "resolv.conf"
            resolv.write_text(f"nameserver {SLIRP_DNS}\n")
            args += ["--ro-bind", str(resolv), os.path.realpath(RESOLV)]
        # The folders bwrap makes on the way to a mount copy the modes of the real ones (a data dir's 0700):
        # made beforehand, open to the run's user.
        way = _way_to if self.user() is not None else (lambda path: [])
        shown = [folder for folder in SYSTEM_DIRS if os.path.isdir(folder)]
        hidden = [path for path in self.hidden if os.path.lexists(path)]
        later = []
        writable = [str(folder) for folder in writable]
        own = [form for folder in (tree, tmp, home, *writable) for form in _forms(folder)]
        # Folders before what is in them: what a shown folder holds needs no mount of its own.
        for path in sorted(dict.fromkeys(form for item in readable for form in _forms(item)), key=len):
            if not os.path.exists(path) or any(_inside(path, folder) for folder in [*own, *later]):
                continue
            if any(_inside(path, secret) for secret in hidden):
                later.append(path)  # a venv under the data dir: shown on top of the folder hiding it
                continue
            if any(_inside(path, folder) for folder in shown):
                continue
            args += [*way(path), "--ro-bind", path, path]
            shown.append(path)
        for secret in hidden:
            if any(_inside(secret, folder) for folder in shown):
                args += ["--tmpfs", secret] if os.path.isdir(secret) else ["--ro-bind", "/dev/null", secret]
        for path in later:
            args += [*way(path), "--ro-bind", path, path]
        for folder in writable:
            args += [*way(folder), "--bind", folder, folder]
        args += [*way(str(home)), "--bind", str(home), str(home), *way(str(tree)), "--bind", str(tree), str(tree),
                 "--chdir", cwd, "--"]
        return args


def gateway_environment() -> list[str]:
    """The Python the gateway runs on, and the environment it is installed in (read-only for runs: Ansible
    runs from there, and scripts without requirements on its interpreter)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(base))]


def describe(config) -> dict[str, str]:
    """What `gateway config` shows of the sandbox of this machine: {'sandbox': one line}; nothing in client
    mode (runs go to the server)."""
    if config.mode == "client":
        return {}
    sandbox = from_config(config)
    return {"sandbox": sandbox.status(), "network": sandbox.network_status(),
            "memory": sandbox.memory.status(sandbox.active)}


def from_config(config, hidden: Iterable[str | Path] = ()) -> Sandbox:
    """The sandbox [execution] describes."""
    return Sandbox(config.get("execution", "sandbox"), hidden, config.get("execution", "run_as_user"),
                   config.get("execution", "network"), config.get("execution", "memory_limit"))
