"""The target registry: every calibration target as a fact with its semantics and source.

- ``model``: the Target / TargetFilter / TargetSet contract;
- ``registry``: ``resolve_targets(year, system)`` and the coverage report (start here);
- providers: ``policyengine_parameters`` (policyengine-us calibration parameters) and
  ``reference_tables`` (carried public tables in ``data/``: ``soi``, ``state_tables``);
- ``aggregate_uprating``: totals brought to the build year with PolicyEngine's indices.
"""
