"""The terminal client (Textual). It talks to the daemon through the local API only."""
