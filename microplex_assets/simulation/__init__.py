"""PolicyEngine simulations run in forked household slices: the fork pool, process
memory, and a whole file's results assembled from slices of whole states."""
