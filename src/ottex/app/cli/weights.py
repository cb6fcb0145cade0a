"""``ottex weights``: list, locate or download the pretrained weight sets."""

from __future__ import annotations

import argparse

from ...core.errors import WeightsError
from ...nn.weights import WEIGHT_SETS, get_weight_set, search_dirs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, locate or download pretrained weights",
                       description="Pretrained weight sets known to ottex, where they are found, and download.")
    p.add_argument("action", choices=["list", "where", "fetch"], help="list sets; where: show search folders; "
                   "fetch: download a set into the cache")
    p.add_argument("name", nargs="?", default="hybrid", help="weight set for fetch [hybrid]")
    p.add_argument("--weights-dir", metavar="DIR", help="folder searched first")
    p.add_argument("-q", "--quiet", action="store_true", help="fetch: print nothing (no progress bars, no paths)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dirs = search_dirs(args.weights_dir)  # every action: a --weights-dir that is not a folder is an error
    if args.action == "where":
        for d in dirs:
            print(d)
        return 0
    if args.action == "list":
        for ws in WEIGHT_SETS.values():
            members = ws.member_files()
            found = []
            for part, f in members:
                try:
                    part.resolve(f.role, f.level, args.weights_dir, download=False)
                    found.append(f)
                except WeightsError:
                    pass
            levels = ",".join(map(str, ws.levels)) or "-"
            print(f"{ws.name:18s} levels {levels:10s} files here {len(found)}/{len(members)}  {ws.description}")
        return 0
    ws = get_weight_set(args.name)
    for part, f in ws.member_files():
        p = part.resolve(f.role, f.level, args.weights_dir, progress=not args.quiet)
        if not args.quiet:
            print(p)
    return 0
