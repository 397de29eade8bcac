"""Command-line interface: parse arguments, call the library, print the result.

One module per command group, each with ``add_parser(subparsers)`` and the functions its
sub-commands run (set as ``func``). The parser is built from TF-free modules only: its
choices are the config's ``Literal`` types and small constant modules, so ``resnetkit
--help`` answers without loading TensorFlow; a command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from resnetkit.cli import analyze, data, evaluate, export, models, recipes, train, weights
from resnetkit.cli.logs import quiet_tensorflow
from resnetkit.download import DownloadUnavailable

GROUPS = (models, weights, data, train, recipes, evaluate, export, analyze)  # the order of --help


def build_parser() -> argparse.ArgumentParser:
    from resnetkit import __version__

    parser = argparse.ArgumentParser(
        prog="resnetkit", description="Build, train, evaluate and export ResNets (Keras 3)."
    )
    parser.add_argument("--version", action="version", version=f"resnetkit {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show TensorFlow's own info and warning logs (default: only errors)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code: 0, 1 (the command failed), 2 (bad input)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["resnetkit", *argv])  # as a run records its origin
    quiet_tensorflow(verbose=args.verbose)
    try:
        return args.func(args)
    except DownloadUnavailable as e:  # no network: the message says where to put the file
        print(f"resnetkit {args.command}: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"resnetkit {args.command}: error: {e}", file=sys.stderr)
        return 2
