"""`murmurate tour` (and `make run`): the command line shown on two throw-away nodes.

Until the network lands, Bob receives Alice's feed the offline way: an export file.
"""

from __future__ import annotations

import io
import shlex
import tempfile
from pathlib import Path
from typing import TextIO


def run_tour(out: TextIO) -> int:
    from .cli import main

    with tempfile.TemporaryDirectory(prefix="murmurate-tour-") as tmp:
        alice, bob = Path(tmp, "alice"), Path(tmp, "bob")
        env = {"MURMURATE_PASSPHRASE": "correct horse battery staple"}

        def say(text: str) -> None:
            print(f"\n# {text}", file=out)

        def run(home: Path, *args: str) -> str:
            print(f"$ murmurate --home {home.name} {' '.join(shlex.quote(a) for a in args)}", file=out)
            buf, err = io.StringIO(), io.StringIO()
            code = main(["--home", str(home), *args], stdout=buf, stderr=err, env=env)
            text = buf.getvalue() + err.getvalue()
            print("\n".join("  " + line for line in text.rstrip().splitlines()), file=out)
            if code not in (0, 1):
                raise SystemExit(code)
            return buf.getvalue()

        say("Two people, two nodes, two folders. Each identity is an Ed25519 key in an encrypted key file.")
        run(alice, "init")
        run(bob, "init")
        alice_id = run(alice, "whoami", "--json").split('"id": "')[1].split('"')[0]
        bob_id = run(bob, "whoami", "--json").split('"id": "')[1].split('"')[0]

        say("A display name is a label in your own signed profile; the id is the identity.")
        run(alice, "set-profile", "--name", "Alice", "--bio", "Left a server that closed.")
        run(bob, "set-profile", "--name", "Bob")

        say("Alice posts; hashtags are picked out of the text.")
        run(alice, "post", "Hello from my own node! #introductions")
        run(alice, "post", "Nobody can close this account.", "--cw", "smug")
        run(alice, "post", "Reply to myself, to start a thread.", "--reply-to", f"{alice_id}/2")
        run(alice, "log")

        say("A mistyped id is refused, never taken for someone else.")
        run(bob, "follow", alice_id[:-3] + ("a" if alice_id[-3] != "a" else "b") + alice_id[-2:])

        say("Bob follows Alice (a follow is an entry in Bob's own signed feed).")
        run(bob, "follow", alice_id)

        say("Without the network, feeds travel in export files: verified whole before anything is stored.")
        run(alice, "export", str(Path(tmp, "alice.murexp")))
        run(bob, "import", str(Path(tmp, "alice.murexp")))

        say("Bob's home timeline: his own posts and those of the people he follows, newest first.")
        run(bob, "post", "Hi Alice, Bob here. #introductions")
        run(bob, "timeline")

        say("Bob boosts and favourites Alice's first post, and replies to it.")
        run(bob, "boost", f"{alice_id}/2")
        run(bob, "favourite", f"{alice_id}/2")
        run(bob, "post", "Welcome!", "--reply-to", f"{alice_id}/2")

        say("Alice gets Bob's feed back the same way and sees her notifications and the thread.")
        run(bob, "export", str(Path(tmp, "bob.murexp")))
        run(alice, "follow", bob_id)
        run(alice, "import", str(Path(tmp, "bob.murexp")))
        run(alice, "notifications")
        run(alice, "thread", f"{alice_id}/2")

        say("Alice edits a post (the history stays visible) and deletes another: a delete drops the")
        say("post's payload on every node that stores it, while the signed chain still verifies.")
        run(alice, "edit", f"{alice_id}/3", "Nobody can close this account. Nobody.")
        run(alice, "history", f"{alice_id}/3")
        run(alice, "delete", f"{alice_id}/4")
        run(alice, "log", "--limit", "4")

        say("Every stored entry re-checked: signatures, chains, payload hashes.")
        run(bob, "verify")

        say("A damaged export is refused and nothing is stored.")
        damaged = Path(tmp, "damaged.murexp")
        data = bytearray(Path(tmp, "alice.murexp").read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(bytes(data))
        run(bob, "import", str(damaged))

        print("\nThat was the tour. Your own node: `murmurate init`, then `murmurate post \"...\"`.", file=out)
    return 0
