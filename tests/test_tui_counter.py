"""The client's post-length counter is a copy (it keeps the client free of the node stack):
it must agree with the node's rule, which is what refuses a post."""

from hypothesis import given
from hypothesis import strategies as st

from murmurate.node.core.text import count_chars as node_count
from murmurate.ui.tui.textutil import count_chars as client_count

pieces = st.sampled_from(["a", "é", " ", "\n", "https://example.org/x", "http://a.b/c?d=e", "#tag", "😀", "<", "\""])


@given(st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=40))
def test_client_and_node_count_alike(parts: list[str]) -> None:
    text = "".join(parts)
    assert client_count(text) == node_count(text)
