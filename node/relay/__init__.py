"""The relay: the node with a relay policy (DESIGN section 6). See node/relay/relay.py.

Pure parts: config (relay.toml), protocol (relay codes, the `/murmurate/relay/1.0.0`
messages), policy (admission, invites, quotas, what to host), metrics.render. Shells:
relay (the trio node), client (the user's side of the handshake), metrics.serve_http.
"""

from .config import Quota, RelayConfig, RelayConfigError, load_relay_config, parse_relay_config
from .protocol import PROTOCOL, RelayCode, encode_code, parse_code

__all__ = ["Quota", "RelayConfig", "RelayConfigError", "load_relay_config", "parse_relay_config", "PROTOCOL",
           "RelayCode", "encode_code", "parse_code"]
