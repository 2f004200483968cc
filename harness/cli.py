"""The `harness` command: one subcommand per stage of the pipeline.

Each area of the package registers its own subcommands through a
`register(subparsers)` function in its `cli` module, listed in
`_COMMAND_MODULES`; this file only wires them together and turns
`HarnessError` into a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from harness.errors import HarnessError

_COMMAND_MODULES = (
    "harness.evaluate",
    "harness.export.cli",
    "harness.hil.cli",
    "harness.optim.cli",
    "harness.study.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Search for neural networks that fit a microcontroller.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except HarnessError as err:
        print(f"harness {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
