"""The sandbox a run executes in: bubblewrap (bwrap) over Linux namespaces.

What a run sees there (each command of it, under its supervisor):

* its own checked-out tree, read-write, at the same path as outside;
* its venv and Ansible collections (built under the data dir), read-only;
* the gateway's own Python environment (Ansible runs from it), read-only;
* a private /tmp (and /var/tmp) and a private, empty HOME, both in its run folder;
* the system read-only: /usr, /bin, /sbin, /lib*, /etc, /opt, /sys; a /proc of its own pid
  namespace and a minimal /dev;
* the network, as the gateway has it (scripts talk to network devices).

What it does not see: the data dir (the database, the secrets key, other runs, clones, snapshots,
caches), HOME, the gateway's processes, and the key files the configuration names, hidden even
where they lie inside a folder that is shown.  It holds no capabilities, even as root, and cannot
gain any (no setuid).

The builds of a run's dependencies (pip and ansible-galaxy, which run code of the repository) execute in
the same sandbox (venvs.py): the run's tree, the gateway's Python, the environment being built read-write, a
private /tmp and HOME, the network; the hidden paths nowhere.

`[execution] sandbox`: ``auto`` uses bwrap where it works (probed once: some containers allow no
namespaces) and says when it does not; ``bwrap`` requires it (runs are refused without it);
``none`` runs without one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

MODES = ("auto", "bwrap", "none")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")
PROBE_TIMEOUT = 30.0
INSTALL = "install the bubblewrap package"
SHOWN = "runs see their tree, their venv, a private /tmp and HOME, and the system read-only"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _forms(path: str | Path) -> list[str]:
    """The path as given (absolute) and as it really is, without repeats."""
    given = os.path.abspath(os.path.expanduser(str(path)))
    real = os.path.realpath(given)
    return [given] if real == given else [given, real]


class Sandbox:
    def __init__(self, mode: str = "auto", hidden: Iterable[str | Path] = ()):
        if mode not in MODES:
            raise ValueError(f"sandbox mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self.hidden = [form for path in hidden if str(path) for form in _forms(path)]
        self.bwrap = ""
        self._problem: str | None = None

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
            return f"bwrap ({self.bwrap}): {SHOWN}"
        if self.mode == "bwrap":
            return f"unavailable: {self.refusal()}"
        return f"none: {self.problem()}; runs are not sandboxed and can read the data dir ({INSTALL})"

    def warning(self) -> str:
        """For `auto` without a working bwrap: the line said when a run starts (local mode); '' otherwise."""
        if self.mode != "auto" or not self.problem():
            return ""
        return (f"sandbox: {self.problem()}: this run is not sandboxed and can read the gateway's data dir "
                f"({INSTALL}, or set [execution] sandbox = none)")

    def refusal(self) -> str:
        """For `bwrap` without a working bwrap: why runs are refused; '' otherwise."""
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
        return [*args, "--proc", "/proc", "--dev", "/dev"]

    def command(self, *, tree: Path, tmp: Path, home: Path, cwd: str, readable: Iterable[str | Path],
                writable: Iterable[str | Path] = ()) -> list[str]:
        """The bwrap command line (ending with "--") a command of a run starts with: `tree` read-write,
        `tmp` as /tmp and /var/tmp, `home` read-write, `readable` (files or folders) read-only, `writable`
        (existing folders: where a build installs) read-write, the hidden paths nowhere.  [] when runs are
        not sandboxed."""
        if not self.active:
            return []
        args = [self.bwrap, *self._system(), "--bind", str(tmp), "/tmp", "--bind", str(tmp), "/var/tmp"]
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
            args += ["--ro-bind", path, path]
            shown.append(path)
        for secret in hidden:
            if any(_inside(secret, folder) for folder in shown):
                args += ["--tmpfs", secret] if os.path.isdir(secret) else ["--ro-bind", "/dev/null", secret]
        for path in later:
            args += ["--ro-bind", path, path]
        for folder in writable:
            args += ["--bind", folder, folder]
        args += ["--bind", str(home), str(home), "--bind", str(tree), str(tree), "--chdir", cwd, "--"]
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
    return {"sandbox": Sandbox(config.get("execution", "sandbox")).status()}
