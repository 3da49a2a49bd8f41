"""Thin helpers that put every asset into its stage group with its stage's contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import AssetExecutionContext, MetadataValue, asset

from microplex_assets.partitions import Cell, cell_from_partition_key
from microplex_assets.stages import stage


def stage_asset(group: str, **asset_kwargs: Any) -> Callable:
    """``@asset`` in the stage's group, described by the stage contract plus the docstring."""

    contract = stage(group)

    def decorator(fn: Callable) -> Any:
        doc = (fn.__doc__ or "").strip()
        return asset(
            name=asset_kwargs.pop("name", fn.__name__),
            group_name=contract.group,
            description=f"{contract.description}.\n\n{doc}",
            metadata={"stage": contract.number, "stage_group": contract.group},
            **asset_kwargs,
        )(fn)

    return decorator


def stage_metadata(group: str, **values: Any) -> dict[str, Any]:
    """Materialization metadata that always carries the stage number and its title."""
    contract = stage(group)
    return {"stage": MetadataValue.text(f"{contract.number} {contract.group}"), **values}


def context_cell(context: AssetExecutionContext) -> Cell:
    """The partition cell of a run (validated)."""
    return cell_from_partition_key(context.partition_key)


def table_metadata(frame: Any, max_rows: int = 60) -> MetadataValue:
    """A pandas table as markdown metadata (the UI renders it as a table)."""
    return MetadataValue.md(frame.head(max_rows).to_markdown(index=False))
