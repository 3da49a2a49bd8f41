"""Releases: immutable run bundles, the current pointer, promote / rollback, the run index
and the readiness dashboard."""
