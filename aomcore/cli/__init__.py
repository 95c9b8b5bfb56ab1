"""Command line: ``python -m aomcore COMMAND ...``, one module per command group.

* :mod:`.aom` — train, layers, maps, overview, selectivity-experiment, criteria, edit, reproduce
  (Garcia et al. 2019, and the loop around it);
* :mod:`.deepeyes` — deepeyes (Pezzotti et al. 2018);
* :mod:`.rauber` — embed, trails (Rauber et al. 2017; DeepEyes' input and filter maps);
* :mod:`.store` — workspace, run.

Bad input exits with code 2 and one ``error: …`` line saying what was expected and what
was found.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..base import threads
from ..base.allocator import reuse_freed_memory
from ..base.errors import InputError
from ..base.folder import WORKERS_ENV
from . import aom, deepeyes, rauber, store
from ._common import end_status_line

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aomcore",
                                     description="Activation occurrence maps (Garcia et al., IJCNN 2019).")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (aom, deepeyes, rauber, store):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with a one-line message on bad input)."""
    args = _parser().parse_args(argv)
    if getattr(args, "workers", None) is not None:  # read by every image folder this command (or its jobs) opens
        os.environ[WORKERS_ENV] = str(args.workers)
    reuse_freed_memory()  # a batch loop per command: keep freed activations for the next batch
    try:
        with threads.running():  # this command's share of the cores, shared with our other jobs
            return args.func(args)
    except InputError as exc:
        end_status_line()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        end_status_line()
        print("error: interrupted", file=sys.stderr)
        return 130
