"""The target registry: every calibration target as a fact with its semantics and source."""
