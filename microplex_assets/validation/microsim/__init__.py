"""Stage 9: the frozen microsimulation benchmark suite."""
