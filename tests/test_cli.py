"""The command line, in-process (fast) and as a real process (exit codes, stderr, no traceback)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from murmurate.ui.cli import main

PASS = "tr0ub4dor&3"


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = {"MURMURATE_INSECURE_FAST_KDF": "1", "MURMURATE_PASSPHRASE": PASS}
    if env is not None:
        environ = env
    code = main(["--home", str(home), *args], stdout=out, stderr=err, env=environ)
    return code, out.getvalue(), err.getvalue()


def ok(home: Path, *args: str) -> str:
    code, out, err = run(home, *args)
    assert code == 0, err
    return out


def json_out(home: Path, *args: str):
    return json.loads(ok(home, *args, "--json"))


@pytest.fixture
def alice(tmp_path: Path) -> Path:
    home = tmp_path / "alice"
    ok(home, "init")
    return home


@pytest.fixture
def bob(tmp_path: Path) -> Path:
    home = tmp_path / "bob"
    ok(home, "init")
    return home


def my_id(home: Path) -> str:
    return json_out(home, "whoami")["id"]


def test_init_creates_encrypted_key_with_mode_0600(alice: Path) -> None:
    key = alice / "identity.key"
    assert key.stat().st_mode & 0o777 == 0o600
    who = json_out(alice, "whoami")
    assert who["id"].startswith("mur_") and who["key_encrypted"] is True


def test_init_twice_refuses_and_keeps_the_key(alice: Path) -> None:
    before = (alice / "identity.key").read_bytes()
    code, _, err = run(alice, "init")
    assert code == 1 and "already holds an identity" in err
    assert (alice / "identity.key").read_bytes() == before


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(alice: Path) -> None:
    ok(alice, "post", "first")
    key_before = (alice / "identity.key").read_bytes()
    code, out, err = run(alice, "post", "second", env={"MURMURATE_PASSPHRASE": "nope"})
    assert code == 1
    assert "wrong passphrase" in err and "Traceback" not in err
    assert (alice / "identity.key").read_bytes() == key_before
    assert [i["text"] for i in json_out(alice, "log")] == ["first"]


def test_passphrase_file_and_no_passphrase(tmp_path: Path) -> None:
    pf = tmp_path / "pass.txt"
    pf.write_text(PASS + "\n")
    home = tmp_path / "carol"
    assert run(home, "--passphrase-file", str(pf), "init", env={"MURMURATE_INSECURE_FAST_KDF": "1"})[0] == 0
    assert run(home, "--passphrase-file", str(pf), "post", "via file", env={})[0] == 0
    code, _, err = run(home, "post", "no passphrase given", env={})
    assert code == 1 and "passphrase" in err

    plain = tmp_path / "relay"
    assert run(plain, "init", "--no-passphrase", env={})[0] == 0
    assert json_out(plain, "whoami")["key_encrypted"] is False
    assert run(plain, "post", "unlocked", env={})[0] == 0


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "x", "init", env={"MURMURATE_PASSPHRASE": ""})
    assert code == 1 and "empty passphrase" in err
    assert not (tmp_path / "x" / "identity.key").exists()


def test_post_log_and_limits(alice: Path) -> None:
    item = json_out(alice, "post", "Hello #Fediverse https://example.org/" + "x" * 300, "--cw", "long link")
    assert item["tags"] == ["fediverse"] and item["cw"] == "long link" and item["seq"] == 1
    code, _, err = run(alice, "post", "y" * 501)
    assert code == 1 and "501 characters" in err
    ok(alice, "post", "y" * 500)
    assert [i["seq"] for i in json_out(alice, "log")] == [2, 1]


def test_reply_threads_name_parent_and_root(alice: Path) -> None:
    me = my_id(alice)
    ok(alice, "post", "root")
    ok(alice, "post", "child", "--reply-to", f"{me}/1")
    grandchild = json_out(alice, "post", "grandchild", "--reply-to", f"{me}/2")
    assert grandchild["reply_to"] == f"{me}/2" and grandchild["root"] == f"{me}/1"
    code, _, err = run(alice, "post", "to nowhere", "--reply-to", f"{me}/99")
    assert code == 1 and "no post" in err
    code, _, err = run(alice, "post", "bad ref", "--reply-to", "banana")
    assert code == 1 and "<id>/<seq>" in err


def test_follow_timeline_through_export_and_import(alice: Path, bob: Path, tmp_path: Path) -> None:
    for i in range(5):
        ok(alice, "post", f"alice {i}")
    a = my_id(alice)
    mistyped = a[:-1] + ("a" if a[-1] != "a" else "b")
    code, _, err = run(bob, "follow", mistyped)
    assert code == 1 and "checksum" in err
    ok(bob, "follow", a)
    assert json_out(bob, "following") == [a]
    code, _, err = run(bob, "follow", a)
    assert code == 1 and "already following" in err
    archive = tmp_path / "a.murexp"
    ok(alice, "export", str(archive))
    assert "5 new" in ok(bob, "import", str(archive))
    assert "0 new, 5 already here" in ok(bob, "import", str(archive))
    ok(bob, "post", "bob speaks")
    page = json_out(bob, "timeline", "--limit", "4")
    assert [i["text"] for i in page["items"]] == ["bob speaks", "alice 4", "alice 3", "alice 2"]
    rest = json_out(bob, "timeline", "--limit", "4", "--cursor", page["next_cursor"])
    assert [i["text"] for i in rest["items"]] == ["alice 1", "alice 0"] and rest["next_cursor"] is None
    ok(bob, "unfollow", a)
    assert [i["text"] for i in json_out(bob, "timeline")["items"]] == ["bob speaks"]
    assert json_out(bob, "verify")["problems"] == []


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "flip", "append", "magic"])
def test_damaged_export_is_refused_and_store_unchanged(alice: Path, bob: Path, tmp_path: Path, damage: str) -> None:
    for i in range(30):
        ok(alice, "post", f"post {i} " + "z" * 100)
    archive = tmp_path / "a.murexp"
    ok(alice, "export", str(archive))
    data = bytearray(archive.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 40]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x10
    elif damage == "append":
        data += b"\x00"
    else:
        data[0] ^= 0xFF
    archive.write_bytes(bytes(data))
    before = json_out(bob, "verify")
    code, _, err = run(bob, "import", str(archive))
    assert code == 1 and "nothing imported" in err
    assert json_out(bob, "verify") == before


def test_bad_cursor_and_limit_are_clear_errors(alice: Path) -> None:
    code, _, err = run(alice, "timeline", "--cursor", "!!!")
    assert code == 1 and "cursor" in err
    code, _, err = run(alice, "timeline", "--limit", "0")
    assert code == 1 and "--limit" in err


def test_commands_before_init_say_so(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "empty", "timeline")
    assert code == 1 and "murmurate init" in err


def test_home_from_environment_isolates_nodes(tmp_path: Path) -> None:
    env = {"MURMURATE_INSECURE_FAST_KDF": "1", "MURMURATE_PASSPHRASE": PASS}
    for name in ("one", "two"):
        out, err = io.StringIO(), io.StringIO()
        assert main(["init"], stdout=out, stderr=err, env={**env, "MURMURATE_HOME": str(tmp_path / name)}) == 0
    assert (tmp_path / "one" / "identity.key").read_bytes() != (tmp_path / "two" / "identity.key").read_bytes()


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MURMURATE_INSECURE_FAST_KDF": "1", "MURMURATE_PASSPHRASE": PASS,
           "MURMURATE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "murmurate.ui.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_real_process_errors_have_no_traceback_unless_debug(tmp_path: Path) -> None:
    proc = _cli("import", str(tmp_path / "missing.murexp"), home=tmp_path / "h")
    assert proc.returncode == 1
    assert proc.stderr.startswith("murmurate: error:") and "Traceback" not in proc.stderr
    proc = _cli("--debug", "import", str(tmp_path / "missing.murexp"), home=tmp_path / "h")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.slow
def test_tour_runs() -> None:
    out = io.StringIO()
    assert main(["tour"], stdout=out, stderr=io.StringIO(), env={}) == 0
    assert "all good" in out.getvalue() and "nothing imported" in out.getvalue()


def test_every_command_has_a_verb_in_the_table() -> None:
    from murmurate.ui import cli
    commands = set(cli.build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands - set(cli.VERBS) == {"daemon", "tour", "tui"}  # handled before the table
    assert set(cli.VERBS) <= commands
