"""``make promote RUN=...`` / ``make rollback``: the Dagster jobs, run in-process on the
instance at $DAGSTER_HOME so each shows in the UI's run history."""

from __future__ import annotations

import argparse
import sys
from typing import Any

QUIET = {"console": {"config": {"log_level": "CRITICAL"}}}


def failure_text(failure: Any) -> str:
    """A refused promotion or rollback (a ``dagster.Failure``) as its message alone, e.g.
    ``national|US: run ... not promoted: blocking gate '...' (calibration) failed: ...``;
    any other error with its class and stack, since that is a bug to report."""
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        return failure.user_failure_data.description.strip()
    return failure.error.to_string().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["promote", "rollback"])
    parser.add_argument("--run", default=None, help="run key (runs/<run_key>/) to promote")
    parser.add_argument("--product", default="national")
    parser.add_argument("--geography", default="US")
    parser.add_argument("--reason", default="")
    args = parser.parse_args(argv)
    if args.action == "promote" and not args.run:
        parser.error("promote needs --run <run_key> (see artifacts/<product>/<geography>/runs/)")
    from dagster import DagsterInstance

    from definitions import defs

    config: dict[str, str] = {"product": args.product, "geography": args.geography,
                              "reason": args.reason}  # fmt: skip
    op = "promote_bundle" if args.action == "promote" else "rollback_bundle"
    if args.action == "promote":
        config["run_key"] = args.run
    job = defs.get_job_def(f"{args.action}_release")
    result = job.execute_in_process(
        # Dagster's console logger would print a refusal as an 80-line stack trace before
        # the one line that matters; the run and its events stay in the instance (UI).
        run_config={"ops": {op: {"config": config}}, "loggers": QUIET},
        instance=DagsterInstance.get(),
        raise_on_error=False,
    )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(failure_text(event.event_specific_data), file=sys.stderr)
        return 1
    output = result.output_for_node(op)
    print(f"{args.product}|{args.geography}: current is {output['current']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
