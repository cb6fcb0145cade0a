"""``ottex info``: the settings recorded in ottex outputs, and the command line that makes the same image again.

Every image ottex writes carries a settings record (a PNG text chunk ``ottex``;
the comment of a JPEG): ottex version, method, task, inputs, size, seed, every
option value, batch, colour preservation and device. ``ottex info IMAGE``
prints it with a ``reproduce:`` command line (same seed, settings and device:
the same image, as long as the inputs are where they were).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from ...core.errors import ImageError, OttexError
from ...image.io import read_settings
from ...methods.base import SYNTHESIS, TRANSFER, get_method
from ...methods.options import option_values

__all__ = ["add_parser", "run", "reproduce_command"]

COLOR = "color"  # the task of ``ottex color`` outputs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the settings recorded in ottex outputs and the command that makes them again",
        description="Print the settings ottex recorded in its output images (method, inputs, size, seed, options, "
        "version, device) and a command line that makes the same image again.",
        epilog="example: ottex info zebra_synth_512x512_sort_s0.png",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="images written by ottex")
    p.add_argument("--json", action="store_true", help="print the records as JSON, one object per image")
    p.set_defaults(func=run)


def _flag_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_flag_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def reproduce_command(record: dict[str, Any], output: str) -> tuple[list[str], list[str]]:
    """The ``ottex`` command line that makes the recorded image again (writing ``output``), and notes on what
    it cannot say (options only the Python API sets, the image's place in a batch).

    Raises:
        OttexError: the record names a method that is not registered here.
    """
    task = record.get("task")
    inputs = record.get("inputs", {})
    options = record.get("options", {})
    notes: list[str] = []
    if task == COLOR:
        argv = ["ottex", "color", inputs.get("source", "?"), inputs.get("target", "?")]
        for name, value in options.items():
            flag = f"--{name.replace('_', '-')}"
            argv += [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, _flag_value(value)]
    elif task in (SYNTHESIS, TRANSFER):
        method = get_method(record["method"], task)
        if task == SYNTHESIS:
            styles = inputs.get("style", [])
            argv = ["ottex", "synth", *(styles if isinstance(styles, list) else [styles])]
            h, w = record["size"]
            argv += ["--width", str(w), "--height", str(h)]
            if record.get("batch", 1) > 1:
                argv += ["--batch", str(record["batch"])]
                index = record.get("index", 0)
                out = Path(output)
                if out.stem.endswith(f"_{index}"):  # -o NAME.png writes NAME_0.png ... NAME_<batch-1>.png
                    output = str(out.with_name(out.stem[: -len(f"_{index}")] + out.suffix))
                notes.append(f"image {index} of a batch of {record['batch']}: the command writes them all, this "
                             f"one as {Path(output).stem}_{index}{Path(output).suffix}")
        else:
            argv = ["ottex", "style", inputs.get("content", "?"), inputs.get("style", "?")]
            size = record.get("requested_size")
            if isinstance(size, list):
                argv += ["--width", str(size[1]), "--height", str(size[0])]
            elif size is not None:
                argv += ["--size", str(size)]
            if record.get("preserve_color"):
                argv += ["--preserve-color", str(record["preserve_color"])]
        if method.name != "ot":
            argv += ["--method", method.name]
        defaults = option_values(method.make_options())
        for spec in method.option_specs(task):
            if spec.name not in options or options[spec.name] == defaults.get(spec.name):
                continue
            value = options[spec.name]
            if not spec.cli:
                notes.append(f"{spec.name}={value!r} was set through the Python API")
            elif spec.type.startswith("bool"):
                argv.append(spec.cli_flag if value else "--no-" + spec.cli_flag[2:])
            else:
                argv += [spec.cli_flag, _flag_value(value)]
    else:
        raise OttexError(f"unknown task '{task}' in the settings record")
    if record.get("seed") is not None:
        argv += ["--seed", str(record["seed"])]
    if record.get("device"):
        argv += ["--device", str(record["device"])]
    return [*argv, "-o", output], notes


def _describe(path: str, record: dict[str, Any]) -> list[str]:
    lines = [path]
    made = f"ottex {record.get('ottex', '?')}, {record.get('task', '?')}"
    if record.get("method"):
        made += f" with method {record['method']}"
    lines.append(f"  made by: {made}, seed {record.get('seed')}, device {record.get('device', '?')}")
    inputs = ", ".join(f"{k} {v if not isinstance(v, list) else ' + '.join(v)}"
                       for k, v in record.get("inputs", {}).items())
    lines.append(f"  inputs: {inputs}")
    h, w = record.get("size", ["?", "?"])
    lines.append(f"  size: {w}x{h}")
    options = record.get("options", {})
    try:  # the options that differ from the method's defaults
        defaults = option_values(get_method(record["method"]).make_options()) if record.get("method") else {}
    except OttexError:
        defaults = {}
    changed = {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items())
    rest = ", the others at their defaults" if shown and len(changed) < len(options) else ""
    lines.append("  options: " + (shown or "all at their defaults") + rest)
    try:
        argv, notes = reproduce_command(record, path)
    except OttexError as exc:
        lines.append(f"  reproduce: not possible here ({exc})")
        return lines
    lines.append(f"reproduce: {shlex.join(argv)}")
    lines += [f"  note: {n}" for n in notes]
    return lines


def run(args: argparse.Namespace) -> int:
    status = 0
    records = {}
    for path in args.images:
        if Path(path).is_dir():
            print(f"ottex: error: {path} is a folder; give the images ottex wrote", file=sys.stderr)
            status = 1
            continue
        try:
            record = read_settings(path)
        except ImageError as exc:
            print(f"ottex: error: {exc}", file=sys.stderr)
            status = 1
            continue
        if record is None:
            print(f"ottex: error: {path}: no ottex settings recorded", file=sys.stderr)
            status = 1
            continue
        if args.json:
            records[path] = record
        else:
            print("\n".join(_describe(path, record)))
    if args.json and records:
        print(json.dumps(records, indent=2, sort_keys=True))
    return status
