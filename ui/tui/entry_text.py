"""One entry as rich Text. Pure: `now_ms` is passed in, so snapshots can freeze time."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from .textutil import relative_time, who

KIND_LABEL = {"reply": "replied", "mention": "mentioned you", "boost": "boosted",
              "favourite": "favourited", "quote": "quoted you", "follow": "followed you"}


def header(item: dict[str, Any], now_ms: int, suffix: str = "") -> Text:
    t = Text()
    t.append(who(item), style="bold")
    if suffix:
        t.append(f" {suffix}")
    t.append(f" · {relative_time(item['timestamp_ms'], now_ms)}", style="dim")
    return t


def entry_text(item: dict[str, Any], now_ms: int, *, expanded: bool = False) -> Text:
    """`expanded`: show the text behind a content warning."""
    kinds = item.get("_kinds")
    if kinds:
        out = header(item, now_ms, ", ".join(KIND_LABEL.get(k, k) for k in kinds))
        if item.get("type") == "post" and item.get("state") == "ok":
            out.append("\n")
            out.append_text(_body(item, now_ms, expanded))
        return out
    if item["type"] == "boost" and item.get("boosted_post"):
        out = header(item, now_ms, "boosted")
        out.append("\n")
        out.append_text(entry_text(item["boosted_post"], now_ms, expanded=expanded))
        return out
    out = header(item, now_ms)
    out.append("\n")
    out.append_text(_body(item, now_ms, expanded))
    return out


def _body(item: dict[str, Any], now_ms: int, expanded: bool) -> Text:
    kind, state = item["type"], item.get("state")
    if state != "ok":
        return Text(f"({kind}: {str(state).replace('_', ' ')})", style="dim italic")
    if kind != "post":
        target = f" {item['target']}" if "target" in item else ""
        return Text(f"({kind}{target})", style="dim")
    t = Text()
    if item.get("reply_to"):
        t.append(f"↳ reply to {item['reply_to'][:16]}…/{item['reply_to'].rsplit('/', 1)[-1]}\n", style="dim")
    if "cw" in item:
        t.append(f"CW: {item['cw']}", style="bold yellow")
        if not expanded:
            t.append("  [x: show]", style="dim")
            return _counts(t, item)
        t.append("\n")
    t.append(_with_names(item.get("text", ""), item.get("mention_names") or {}))
    return _counts(t, item)


def _counts(t: Text, item: dict[str, Any]) -> Text:
    marks = []
    for key, sym, mine in (("replies", "↩", None), ("boosts", "⟳", "boosted"), ("favourites", "★", "favourited")):
        n = item.get(key, 0)
        if n or (mine and item.get(mine)):
            marks.append(f"{sym} {n}" + ("•" if mine and item.get(mine) else ""))
    if item.get("edits"):
        marks.append("edited")
    if marks:
        t.append("\n" + "  ".join(marks), style="dim")
    return t


def _with_names(text: str, names: dict[str, Any]) -> str:
    """Mentions are ids; show them as "Name [fingerprint]" where the daemon knows the name."""
    for mention, name in names.items():
        if isinstance(name, str) and name:
            text = text.replace(mention, f"{name} [{mention[4:12]}]")
    return text
