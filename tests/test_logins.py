"""Logins against a real `gateway-daemon`: wrong passwords lock a user, and an address, for a growing delay that
the refusal names (the right password too is refused meanwhile); an admin lifts a user's lock; API keys are listed
(your own; an admin: all) with when they were made, last used and expire, and revoked one by one."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest

from cli_helpers import one_error_line
from gateway_server import ADMIN_PASSWORD, Client, Daemon

CAROL = "carol-password-1"
LOCK = re.compile(r"try again after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    daemon = Daemon(tmp_path_factory.mktemp("logins"), certs,
                    server="login_failures_per_user = 3\nlogin_failures_per_address = 8\nlogin_lock_seconds = 2\n"
                           "login_lock_max_seconds = 60\n")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def admin(server, certs, tmp_path_factory) -> Client:
    client = Client(tmp_path_factory.mktemp("admin"), server.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "user", "carol", "--role", "operator", "--password-stdin", stdin=CAROL + "\n")
    return client


def _login(client: Client, user: str, password: str):
    return client("login", "--username", user, "--password-stdin", stdin=password + "\n")


def _until(line: str) -> float:
    found = LOCK.search(line)
    assert found, line
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def test_wrong_passwords_lock_the_user_until_a_time_the_refusal_names(admin, server, certs, tmp_path):
    carol = Client(tmp_path / "carol", server.port, certs["ca"])
    for _ in range(3):
        assert one_error_line(_login(carol, "carol", "wrong-password"), 1) == "gateway: wrong username or password"
    started = time.time()
    locked = one_error_line(_login(carol, "carol", CAROL), 1)  # the right password, refused
    assert locked.startswith("gateway: too many failed logins for carol: try again after ")
    assert locked.endswith(", or ask an admin to unlock it (gateway edit user carol --unlock)")
    assert started - 2 <= _until(locked) <= started + 3
    users = {u["name"]: u for u in json.loads(admin.ok("get", "users", "-o", "json").stdout)}
    assert users["carol"]["locked_until"] and users["admin"]["locked_until"] is None
    # an admin lifts it
    assert "unlocked" in admin.ok("edit", "user", "carol", "--unlock").stdout
    carol.login("carol", CAROL)
    assert json.loads(admin.ok("describe", "user", "carol", "-o", "json").stdout)["locked_until"] is None


def test_each_further_wrong_password_doubles_the_lock(admin, server, certs, tmp_path):
    carol = Client(tmp_path / "carol", server.port, certs["ca"])
    for _ in range(3):
        _login(carol, "carol", "wrong-password")
    first = _until(one_error_line(_login(carol, "carol", CAROL), 1))
    time.sleep(max(0.0, first - time.time()) + 1.2)
    assert one_error_line(_login(carol, "carol", "wrong-again"), 1) == "gateway: wrong username or password"
    now = time.time()
    second = _until(one_error_line(_login(carol, "carol", CAROL), 1))
    assert now + 2 <= second <= now + 5.5, (second - now)  # 4 s: twice the first
    admin.ok("edit", "user", "carol", "--unlock")
    carol.login("carol", CAROL)


def test_wrong_passwords_from_one_address_lock_that_address(admin, server, certs, tmp_path):
    other = Client(tmp_path / "other", server.port, certs["ca"])
    for index in range(8):  # made-up names: no user's count, the address's alone
        assert one_error_line(_login(other, f"nobody{index}", "wrong-password"), 1) == \
            "gateway: wrong username or password"
    locked = one_error_line(_login(other, "admin", ADMIN_PASSWORD), 1)
    assert locked.startswith("gateway: too many failed logins from 127.0.0.1: try again after ")
    time.sleep(max(0.0, _until(locked) - time.time()) + 1.2)
    other.login("admin", ADMIN_PASSWORD)  # and a success clears the address's count
    assert one_error_line(_login(other, "nobody", "wrong-password"), 1) == "gateway: wrong username or password"
    other.login("admin", ADMIN_PASSWORD)


def test_api_keys_are_listed_to_their_owner_and_revoked_one_by_one(admin, server, certs, tmp_path):
    laptop, desktop = (Client(tmp_path / name, server.port, certs["ca"]) for name in ("laptop", "desktop"))
    laptop.login("carol", CAROL)
    desktop.login("carol", CAROL)
    mine = json.loads(laptop.ok("get", "apikeys", "-o", "json").stdout)
    assert {k["user"] for k in mine} == {"carol"} and len(mine) >= 2
    assert sum(k["current"] for k in mine) == 1
    for key in mine:
        assert key["created_at"] and key["expires_at"] > key["created_at"] and re.fullmatch(r"[0-9a-f]{16}", key["id"])
    assert "last_used_at" in mine[0]
    table = laptop.ok("get", "apikeys").stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "USER", "CREATED", "LAST"]
    everyone = json.loads(admin.ok("get", "apikeys", "-o", "json").stdout)
    assert {"admin", "carol"} <= {k["user"] for k in everyone}
    admins = [k["id"] for k in everyone if k["user"] == "admin"]
    # carol may not touch the admin's key (to her it does not exist), but may revoke her own
    assert one_error_line(laptop("delete", "apikey", admins[0]), 1) == f"gateway: API key {admins[0]} not found"
    desktops = [k["id"] for k in json.loads(desktop.ok("get", "apikeys", "-o", "json").stdout) if k["current"]]
    assert laptop.ok("delete", "apikey", desktops[0]).stdout.strip() == f"API key {desktops[0]} revoked"
    assert one_error_line(desktop("get", "services"), 1) == \
        "gateway: the API key is not valid (revoked or unknown): run gateway login"
    laptop.ok("get", "services")
    # an admin revokes anyone's
    laptops = [k["id"] for k in json.loads(laptop.ok("get", "apikeys", "-o", "json").stdout) if k["current"]]
    admin.ok("delete", "apikey", laptops[0])
    assert laptop("get", "services").returncode == 1
    bad = admin("delete", "apikey", "not-an-id")
    assert one_error_line(bad, 1) == "gateway: 'not-an-id' is not an API key id (as gateway get apikeys shows it)"
