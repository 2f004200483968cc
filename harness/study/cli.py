"""Subcommands of this area (registered by harness.cli)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to the `harness` parser."""
