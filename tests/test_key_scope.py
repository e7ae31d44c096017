"""Admin keys reach no further than themselves: a real server process, keys made by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from test_server import _start, _stop

from engramdb import Memory
from engramdb.server import create_key


@dataclass
class Keys:
    url: str
    secrets: dict[str, str]
    ids: dict[str, str]

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.secrets[name]}"}, timeout=30)


def _cli_key(store: str, *args: str) -> dict[str, object]:
    """``engramdb keys create ... --json`` as a user runs it."""
    command = [sys.executable, "-m", "engramdb", "keys", "create", "--store", store, "--json", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    store = f"sqlite:///{tmp_path_factory.mktemp('keys') / 'keys.db'}"
    made = {"alice_admin": _cli_key(store, "-t", "acme", "-u", "alice", "--admin")}
    with Memory(store) as m:
        for name, tenant, users, admin in [
            ("root", "acme", None, True), ("acme_all", "acme", None, False), ("bob", "acme", ["bob"], False),
            ("alice_bob", "acme", ["alice", "bob"], False), ("alice", "acme", ["alice"], False),
            ("other_alice", "other", ["alice"], False), ("star", "*", None, True),
            ("star_alice", "*", ["alice"], True),
        ]:  # fmt: skip
            secret, key = create_key(m.store, tenant, user_ids=users, admin=admin)
            made[name] = {"secret": secret, "id": key.id}
        m.for_tenant("acme").add("bob likes tea", user_id="bob", infer=False)
    proc, url = _start(store)
    yield Keys(url, {n: str(k["secret"]) for n, k in made.items()}, {n: str(k["id"]) for n, k in made.items()})
    _stop(proc)


def test_a_user_limited_admin_key_creates_only_keys_for_some_of_its_users(keys: Keys) -> None:
    with keys.client("alice_admin") as admin:
        escalate = admin.post("/v1/keys", json={"admin": True})
        assert escalate.status_code == 403 and escalate.json()["error"]["code"] == "forbidden"
        assert admin.post("/v1/keys", json={}).status_code == 403  # unrestricted, even without admin
        assert admin.post("/v1/keys", json={"user_ids": ["alice", "bob"]}).status_code == 403
        assert admin.post("/v1/keys", json={"user_ids": ["bob"], "admin": True}).status_code == 403
        made = admin.post("/v1/keys", json={"user_ids": ["alice"], "admin": True, "name": "alice's app"})
        assert made.status_code == 200, made.text
        assert made.json()["user_ids"] == ["alice"] and made.json()["tenant_id"] == "acme"
    keys.secrets["made"] = made.json()["secret"]
    with keys.client("made") as child:
        assert child.get("/v1/memories", params={"user_id": "alice"}).status_code == 200
        assert child.get("/v1/memories", params={"user_id": "bob"}).status_code == 403
        assert child.post("/v1/keys", json={"admin": True}).status_code == 403  # no more than its parent
    with keys.client("root") as root:  # the refusals stored nothing
        assert [k["user_ids"] for k in root.get("/v1/keys").json() if k["name"] == "alice's app"] == [["alice"]]
        assert len(root.get("/v1/keys").json()) == 7


def test_a_user_limited_admin_key_lists_and_revokes_only_keys_within_its_users(keys: Keys) -> None:
    with keys.client("alice_admin") as admin:
        listed = {k["id"] for k in admin.get("/v1/keys").json()}
        assert {keys.ids["alice_admin"], keys.ids["alice"]} <= listed
        for hidden in ("root", "acme_all", "bob", "alice_bob", "other_alice", "star", "star_alice"):
            assert keys.ids[hidden] not in listed, hidden
        for untouchable in ("root", "acme_all", "bob", "alice_bob", "other_alice"):
            refused = admin.delete(f"/v1/keys/{keys.ids[untouchable]}")
            assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", untouchable
        assert admin.delete(f"/v1/keys/{keys.ids['alice']}").json()["revoked_at"]
    with keys.client("root") as root:  # the unrestricted admin key still works
        assert root.get("/v1/memories", params={"user_id": "bob"}).json()["total"] == 1
        revoked = {k["id"] for k in root.get("/v1/keys").json() if k["revoked_at"]}
        assert revoked & {keys.ids[n] for n in ("root", "acme_all", "bob", "alice_bob")} == set()


def test_an_admin_key_of_tenant_star_manages_every_tenant(keys: Keys) -> None:
    """As engramdb/server/auth.py says: an admin key manages the keys of its tenant, or of
    every tenant for the tenant ``*``; no other tenant's admin reaches those keys."""
    with keys.client("star") as star:
        listed = {k["id"] for k in star.get("/v1/keys").json()}
        assert {keys.ids[n] for n in ("root", "other_alice", "star_alice")} <= listed
        made = star.post("/v1/keys", json={"tenant_id": "other", "user_ids": ["carol"]}).json()
        assert made["tenant_id"] == "other" and made["user_ids"] == ["carol"]
        assert star.delete(f"/v1/keys/{made['id']}").json()["revoked_at"]
    with keys.client("root") as root:
        assert root.post("/v1/keys", json={"tenant_id": "other"}).status_code == 403
        assert root.post("/v1/keys", json={"tenant_id": "*", "admin": True}).status_code == 403
        assert keys.ids["star"] not in {k["id"] for k in root.get("/v1/keys").json()}
        assert root.delete(f"/v1/keys/{keys.ids['other_alice']}").status_code == 404
    with keys.client("star_alice") as star_alice:  # every tenant, but only keys within its users
        listed = {k["id"] for k in star_alice.get("/v1/keys").json()}
        assert keys.ids["other_alice"] in listed and keys.ids["root"] not in listed
        assert keys.ids["bob"] not in listed and keys.ids["star"] not in listed
        assert star_alice.post("/v1/keys", json={"tenant_id": "other"}).status_code == 403
        made = star_alice.post("/v1/keys", json={"tenant_id": "other", "user_ids": ["alice"]}).json()
        assert made["tenant_id"] == "other" and made["user_ids"] == ["alice"]
