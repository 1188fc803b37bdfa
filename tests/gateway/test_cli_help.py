"""Every flag and argument of ``silentgate`` and ``python -m firmware_sim`` says what it is for."""

from __future__ import annotations

import argparse

import pytest

from firmware_sim.station import parser as sim_parser
from gateway.cli import build_parser


def parsers(root: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {root.prog: root}
    for action in root._actions:  # argparse keeps its subcommands nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= parsers(sub)
    return found


@pytest.mark.parametrize("root", [build_parser(), sim_parser()], ids=lambda p: p.prog)
def test_no_flag_without_help(root: argparse.ArgumentParser) -> None:
    silent = [
        f"{prog} {'/'.join(action.option_strings) or action.dest}"
        for prog, parser in parsers(root).items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert silent == []
    assert len(parsers(build_parser())) == 12  # silentgate, its nine commands, central's two
