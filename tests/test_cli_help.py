"""Help texts of the ``ottex`` commands: made from the options' own metadata, so they cannot drift."""

from __future__ import annotations

import argparse

import pytest

from ottex.app.cli.command import build_parser

#: The placeholders of values on the command line: a count, a number, pixels, files, folders, names ...
METAVARS = {"N", "N[,N...]", "X", "PX", "PX[,PX...]", "MB", "MP", "S", "SECONDS", "FILE", "DIR", "CKPT", "SET",
            "NAME", "L[,L...]", "W[,W...]", "DEVICE", "SEED", "HOST", "PORT", "NAME=FILE", "NAME=CMDLINE",
            "NAME:KEY=VALUE[;KEY=VALUE]", "CMDLINE", "ADDRESS", "METHODS", "STYLE", "CONTENT", "IMAGE", "KEY=VALUE",
            "N[,N]", "DAYS", "EXECUTOR", "COMMAND", "SOURCE", "TARGET", "FILE|DIR", "VARIANT", "INPUT", "INPUTS",
            "W", "START:STOP", "OUT"}


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    found = []

    def walk(p: argparse.ArgumentParser) -> None:
        found.append((p.prog, p))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in dict.fromkeys(action.choices.values()):
                    walk(child)

    walk(parser)
    return found


def _value_actions():
    for prog, p in _commands():
        for action in p._actions:
            if action.option_strings and action.nargs != 0 and not isinstance(action, argparse._HelpAction):
                yield prog, action


def test_every_option_has_help():
    missing = [f"{prog} {a.option_strings[-1]}" for prog, p in _commands() for a in p._actions
               if a.help is None and not isinstance(a, argparse._SubParsersAction)]
    assert not missing  # e.g. 'ottex weights -q' had none


def test_metavars_name_what_a_value_is():
    """No argparse default placeholder (ROTATIONS, MAX_UPLOAD_MB, STYLE_SIDE ...) beside N and PX."""
    odd = [f"{prog} {a.option_strings[-1]} {a.metavar}" for prog, a in _value_actions()
           if a.choices is None and not (isinstance(a.metavar, str) and (a.metavar in METAVARS or
                                                                         a.metavar.startswith("{")))]
    assert not odd


def test_passes_levels_and_rotations_show_the_schedules_defaults():
    from ottex.methods.optimal_textures import NOISE_SCHEDULE, TRANSFER_SCHEDULE, OTSchedule

    def helps(command):
        (p,) = [p for prog, p in _commands() if prog == f"ottex {command}"]
        return {a.dest: " ".join(a.help.split()) for a in p._actions if a.help}

    synth, style = helps("synth"), helps("style")
    csv = lambda values: ",".join(map(str, values))  # noqa: E731
    assert synth["passes"].endswith(f"[{csv(OTSchedule().passes)}; without layout {csv(NOISE_SCHEDULE.passes)}]")
    assert style["passes"].endswith(f"[{csv(TRANSFER_SCHEDULE.passes)}]")
    assert style["levels"].endswith(f"[{csv(TRANSFER_SCHEDULE.levels)}]")
    assert "style transfer" not in synth["passes"] + synth["levels"] and "synthesis" not in style["passes"]
    coarse = csv(OTSchedule().iterations[lvl] for lvl in (5, 4, 3, 2, 1))
    assert f"per level 5..1: {coarse}" in synth["rotations"]


def test_color_has_no_weights_dir():
    (p,) = [p for prog, p in _commands() if prog == "ottex color"]
    assert "--weights-dir" not in {s for a in p._actions for s in a.option_strings}


def test_bench_help_names_every_placeholder_and_the_long_side():
    from ottex.eval.bench import COMMAND_PLACEHOLDERS

    (p,) = [p for prog, p in _commands() if prog == "ottex bench"]
    helps = {a.dest: a.help for a in p._actions}
    for name in COMMAND_PLACEHOLDERS:
        assert "{" + name + "}" in helps["command"]
    assert "long side" in helps["sizes"] and "--content" in helps["sizes"]


@pytest.mark.parametrize("command", ["synth", "style", "color", "bench", "batch", "weights", "serve", "info", "train"])
def test_help_prints(command, capsys):
    from ottex.app.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("usage: ottex")
