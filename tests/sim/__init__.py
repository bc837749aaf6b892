"""A seeded simulator of N replicating nodes: the real replication engine
(node/core/engine.py), an in-memory model of the store and the sync streams, and virtual
time. No sockets, no LMDB, no sleeping: 1,000 nodes converge in seconds."""
