"""Follow the parsed arguments of ``ottex style`` through the code until the executor takes the job.

Every function call that receives the ``argparse.Namespace`` of the command line, or one of its values (an input
path, the method name, an option's text ...), is recorded by its module; consecutive calls in one module make one
*stay*; a *move* is a change of layer. A *climb* is a move from a module of one layer to a module of a later layer
(``core <- ot <- image <- nn <- methods <- eval, exec <- app``): a lower layer handing the arguments back up. The
run stops when ``LocalExecutor.run`` is entered, so no image is made.

Usage:
    PYTHONPATH=src python benchmarks/args_path.py CONTENT STYLE [more ottex style arguments]
"""

from __future__ import annotations

import sys

import ottex.exec.local
from ottex.app.cli.command import build_parser

LAYERS = ["core", "ot", "image", "nn", "methods", "eval|exec", "app"]


class _Stop(Exception):
    pass


def _rank(module: str) -> int:
    layer = module.split(".")[1]
    return next(i for i, group in enumerate(LAYERS) if layer in group.split("|"))


def follow(argv: list[str]) -> list[str]:
    """The modules that received the arguments (or their values), one entry per stay."""
    args = build_parser().parse_args(argv)
    values = [args, *(v for v in vars(args).values() if isinstance(v, (str, list, tuple)) and v)]
    watched = {id(v) for v in values}
    stays: list[str] = []

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202
        if event != "call":
            return None
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("ottex.") or module.startswith("ottex.app.cli.parser"):
            return None
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(id(frame.f_locals.get(n)) in watched for n in names):
            if not stays or stays[-1] != module:
                stays.append(module)
        return None

    def stop(self, jobs, **kwargs):  # noqa: ANN001, ANN202
        raise _Stop

    ottex.exec.local.LocalExecutor.run = stop
    sys.settrace(tracer)
    try:
        args.func(args)
    except _Stop:
        pass
    finally:
        sys.settrace(None)
    return stays


def main() -> None:
    stays = follow(["style", *sys.argv[1:]])
    climbs = sum(_rank(b) > _rank(a) for a, b in zip(stays, stays[1:]))
    layers = [m.split(".")[1] for m in stays]
    layers = [x for i, x in enumerate(layers) if i == 0 or layers[i - 1] != x]
    print(" -> ".join(m.removeprefix("ottex.") for m in stays))
    print("layers: " + " -> ".join(layers))
    print(f"{len(set(stays))} modules, {len(stays)} stays, {len(layers) - 1} moves between layers, {climbs} climbs "
          "back up")


if __name__ == "__main__":
    main()
