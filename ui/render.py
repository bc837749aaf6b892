"""Plain-text rendering of entries for the command line. Pure: `now_ms` is passed in."""

from __future__ import annotations

from typing import Any


def relative_time(timestamp_ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - timestamp_ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def entry(item: dict[str, Any], now_ms: int) -> str:
    head = f"{who(item)} #{item['seq']} · {relative_time(item['timestamp_ms'], now_ms)}"
    kind = item["type"]
    state = item.get("state")
    if state == "encrypted":
        return f"{head}\n    (private: not readable on this node)"
    if state != "ok":
        return f"{head}\n    ({kind}: {state.replace('_', ' ')})"
    if kind == "boost" and "boosted_post" in item:
        inner = entry(item["boosted_post"], now_ms).splitlines()
        return "\n".join([f"{head} boosted:", *("    " + line for line in inner)])
    if kind == "post":
        lines = []
        if "reply_to" in item:
            lines.append(f"    ↳ reply to {item['reply_to']}")
        if item.get("visibility") in ("followers", "direct"):
            lines.append(f"    [{'followers only' if item['visibility'] == 'followers' else 'direct'}]")
        if "cw" in item:
            lines.append(f"    CW: {item['cw']}")
        text = item["text"]
        for mention, name in (item.get("mention_names") or {}).items():
            if name:  # show "@Name [fingerprint]" where the text names the id
                text = text.replace(mention, f"{name} [{mention[4:12]}]")
        lines.extend("    " + line for line in text.splitlines() or [""])
        for m in item.get("media", []):
            lines.append(f"    [{m['mime']}, {m['size']} bytes] {m['alt'] or '(no alt text)'}  (murmurate blob {m['blob']} FILE)")
        counts = [f"{item[k]} {k if item[k] != 1 else k[:-1]}" for k in ("replies", "boosts", "favourites")
                  if item.get(k)]
        if item.get("edits"):
            counts.append(f"edited {item['edits']}x")
        if counts:
            lines.append("    · " + " · ".join(counts))
        return "\n".join([head, *lines])
    target = f" {item['target']}" if "target" in item else ""
    return f"{head}\n    ({kind}{target})"


def entries(items: list[dict[str, Any]], now_ms: int) -> str:
    return "\n\n".join(entry(i, now_ms) for i in items)


def timeline(page: dict[str, Any], now_ms: int) -> str:
    if not page["items"]:
        return "(nothing yet: post something, or follow someone with `murmurate follow ID`)"
    text = entries(page["items"], now_ms)
    if page.get("next_cursor"):
        text += f"\n\nmore: murmurate timeline --cursor {page['next_cursor']}"
    return text


def peers(items: list[dict[str, Any]]) -> str:
    if not items:
        return "(no peers known: share your contact code, or `murmurate connect ADDR`)"
    lines = []
    for p in items:
        state = "connected" if p["connected"] else ("banned" if p.get("banned") else "not connected")
        who = f" author {p['author'][:16]}…" if p.get("author") else ""
        error = f"  last error: {p['last_error']}" if p.get("last_error") and not p["connected"] else ""
        lines.append(f"{p['peer_id']}  {state}  ({p['source']}){who}  {p['entries_received']} entries{error}")
    return "\n".join(lines)


def status(s: dict[str, Any]) -> str:
    lines = [f"node {s['id']}", f"peer {s['peer_id']}",
             *(f"  listening {a}" for a in s["addrs"]),
             f"{s['peers']} peers connected, {s['entries']} entries stored", "feeds:"]
    for f in s["feeds"]:
        behind = "up to date" if f["behind"] == 0 else f"{f['behind']} behind"
        if f.get("cut_at"):
            behind = (f"CUT at entry {f['cut_at']}: its author signed a bad signature there; "
                      "nothing from it on is kept and the feed takes no more entries")
        lines.append(f"  {f['id']}  have {f['have']} of {f['known']} known  ({behind})")
    storage = s.get("storage") or {}  # what the storage caps refuse (docs/operations.md, "Disk full")
    if storage.get("store_full"):
        lines.append(f"store full: {storage['store_full']}")
    for f in storage.get("capped_feeds", []):
        lines.append(f"capped feed {f['id']}: {f['why']}")
    return "\n".join(lines)


def who(item: dict[str, Any]) -> str:
    name = item.get("name")
    return f"{name} [{item['fingerprint']}]" if name else f"{item['author'][:12]}… [{item['fingerprint']}]"


def thread(t: dict[str, Any], now_ms: int) -> str:
    depth: dict[str, int] = {}
    lines = [] if not t.get("root_missing") else [f"(the first post, {t['root']}, is not on this node)"]
    for item in t["items"]:
        level = depth.get(item.get("parent") or "", -1) + 1 if item.get("parent") else 0
        depth[item["ref"]] = level
        pad = "  " * level
        lines.append("\n".join(pad + line for line in entry(item, now_ms).splitlines()))
    return "\n\n".join(lines) or "(empty thread)"


def profile(p: dict[str, Any]) -> str:
    lines = [f"{p['name'] or '(no name)'}  {p['id']}"]
    if p.get("bio"):
        lines.append(p["bio"])
    lines.append(f"{len(p['following'])} following, {len(p['followers'])} followers"
                 + ("  · you follow them" if p.get("you_follow") else "")
                 + ("  · BLOCKED" if p.get("blocked") else "") + ("  · muted" if p.get("muted") else ""))
    for r in p.get("relays", []):
        lines.append(f"relay: {r}")
    for r in p.get("pinned", []):
        lines.append(f"pinned: {r}")
    return "\n".join(lines)


def notifications(n: dict[str, Any], now_ms: int) -> str:
    if not n["items"]:
        return "(no notifications)"
    out = []
    for note in n["items"]:
        e = note["entry"]
        out.append(f"{', '.join(note['kinds'])} from {who(e)} · {relative_time(e['timestamp_ms'], now_ms)}"
                   + (f"\n    {e['text']}" if e.get("text") else f"  ({e['ref']})"))
    return "\n".join(out)


def search(r: dict[str, Any], now_ms: int) -> str:
    parts = []
    if r["people"]:
        parts.append("people:\n" + "\n".join(f"  {p['name']}  {p['id']}" for p in r["people"]))
    if r["hashtags"]:
        parts.append("hashtags: " + " ".join(f"#{t}" for t in r["hashtags"]))
    if r["posts"]:
        parts.append("posts:\n" + entries(r["posts"], now_ms))
    return "\n\n".join(parts) or "(nothing found)"
