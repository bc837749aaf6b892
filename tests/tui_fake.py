"""A fixed, in-memory stand-in for the daemon's API, for deterministic snapshots of the client.
(Behaviour is tested against real daemons in test_tui_screens.py; this only feeds the look.)"""

from __future__ import annotations

from typing import Any

NOW = 1_760_000_000_000
ANN = "mur_" + "a" * 58
BOB = "mur_" + "b" * 58


def post(author: str, name: str, seq: int, minutes_ago: int, text: str, **more: Any) -> dict[str, Any]:
    return {"ref": f"{author}/{seq}", "author": author, "fingerprint": author[4:12], "seq": seq,
            "timestamp_ms": NOW - minutes_ago * 60_000, "type": "post", "state": "ok", "name": name,
            "text": text, "tags": [], "mentions": [], "boosts": 0, "favourites": 0, "replies": 0,
            "boosted": False, "favourited": False, **more}


ROOT = post(BOB, "Bob", 3, 90, "What should we call the new relay? #naming", replies=1, favourites=2)
REPLY = post(ANN, "Ann", 7, 30, "Starling!", reply_to=ROOT["ref"], root=ROOT["ref"])
HOME = [
    post(ANN, "Ann", 8, 1, "Reading the protocol notes tonight. https://example.org/a/very/long/link/to/notes"),
    post(BOB, "Bob", 5, 12, "the ending is sad", cw="film spoiler"),
    {**post(BOB, "Bob", 4, 20, ""), "type": "boost", "boosted_post": post(ANN, "Ann", 2, 600, "Hello #fediverse")},
    REPLY, ROOT,
]


class FakeApi:
    def __init__(self) -> None:
        self.on_event = None
        self.on_close = None

    async def subscribe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def call(self, method: str, **p: Any) -> Any:
        if method == "whoami":
            return {"id": ANN, "fingerprint": ANN[4:12], "name": "Ann", "home": "/home/ann", "key_encrypted": True,
                    "peer_id": "12D3KooWFake", "addrs": ["/ip4/127.0.0.1/tcp/4001"]}
        if method == "timeline":
            return {"items": HOME, "next_cursor": None}
        if method == "notifications":
            return {"items": [{"kinds": ["reply"], "entry": post(BOB, "Bob", 6, 5, "Starling is taken", reply_to=REPLY["ref"])}],
                    "next_cursor": None}
        if method == "thread":
            return {"root": ROOT["ref"], "root_missing": False,
                    "items": [{**ROOT, "parent": None}, {**REPLY, "parent": ROOT["ref"]}]}
        raise AssertionError(f"the fake API has no {method}")
