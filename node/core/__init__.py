"""Pure cores of the node: no I/O, no clocks, no randomness of their own."""
