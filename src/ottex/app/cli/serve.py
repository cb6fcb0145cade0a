"""``ottex serve``: the local web app (:mod:`ottex.app.web`; needs the ``web`` extra, imported only when run)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from ...core.errors import InputError, OttexError

DEFAULT_WORKDIR = "ottex-serve"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web app: drop images into a page and watch textures form (needs pip install \"ottex[web]\")",
        description="Serve one page for texture synthesis, style transfer and colour transfer with any registered "
        "method: uploads, the method's options with their defaults and help, live progress with previews, a "
        "queue (one run at a time per device), a gallery of results with their settings. Listens on this "
        "machine only unless --host says otherwise.",
        epilog="example: ottex serve --port 8000 --workdir ~/textures",
    )
    p.add_argument("--host", default="127.0.0.1", metavar="HOST",
                   help="address to listen on; anything but a loopback address lets "
                   "other machines use the page, with the access link printed at start (it holds a token) "
                   "[127.0.0.1]")
    p.add_argument("--allow-host", metavar="NAME", action="append", default=[],
                   help="another host name the page may be reached by (a DNS name or proxy in front of it); "
                   "repeatable. The loopback names and the name and addresses listened on are always allowed")
    p.add_argument("--no-token", action="store_true",
                   help="off loopback, do not require the access link's token (anyone who reaches the port may use "
                   "the page)")
    p.add_argument("--port", type=int, default=8000, help="port (0: a free one) [8000]")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (CUDA if available), cpu, cuda or cuda:N; several, "
                   "comma-separated, run one job on each at a time [auto]")
    p.add_argument("--workdir", metavar="DIR", default=DEFAULT_WORKDIR,
                   help=f"folder of the uploads and results (created; results found there join the gallery) "
                   f"[./{DEFAULT_WORKDIR}]")
    p.add_argument("--weights-dir", metavar="DIR",
                   help="folder with one sub-folder per weight set, searched before $OTTEX_WEIGHTS and the cache")
    p.add_argument("--max-upload-mb", type=float, default=25.0, metavar="MB", help="largest upload in MB [25]")
    p.add_argument("--max-upload-megapixels", type=float, default=40.0, metavar="MP",
                   help="largest uploaded image in megapixels; larger ones (and decompression bombs) are refused "
                   "before decoding [40]")
    p.add_argument("--max-output-megapixels", type=float, default=16.8, metavar="MP",
                   help="largest image a run may make [16.8: "
                   "4096x4096]")
    p.add_argument("--preview-every", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between preview images of a running job [1]")
    p.add_argument("--models-dir", metavar="DIR", help="folder of the models (checkpoints of 'ottex train') the page "
                   "offers for po, chosen by file name [WORKDIR/models]")
    p.add_argument("--max-queue", type=int, default=50, help="runs waiting at most; more are refused [50]")
    p.add_argument("--keep-uploads-days", type=float, default=30.0, metavar="DAYS",
                   help="uploads no run uses are removed after this many days (0: kept) [30]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..web.server import ServerConfig, host_names, is_loopback, serve  # noqa: PLC0415 - the optional web extra
    except ImportError as exc:
        raise OttexError(f"ottex serve needs the web extra: pip install \"ottex[web]\" ({exc})") from None
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_queue < 1:
        raise InputError(f"--max-queue must be at least 1, got {args.max_queue}")
    if args.keep_uploads_days < 0:
        raise InputError(f"--keep-uploads-days must be 0 or more, got {args.keep_uploads_days}")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-upload-megapixels",
                        args.max_upload_megapixels), ("--max-output-megapixels", args.max_output_megapixels)):
        if value <= 0:
            raise InputError(f"{flag} must be positive, got {value}")
    devices = [d.strip() for d in args.device.split(",") if d.strip()] or ["auto"]
    workdir = Path(os.path.expanduser(args.workdir)).resolve()
    loopback = is_loopback(args.host)
    token = None if loopback or args.no_token else secrets.token_urlsafe(24)
    config = ServerConfig(
        workdir=workdir, devices=devices, weights_dir=args.weights_dir,
        max_upload_bytes=int(args.max_upload_mb * 1e6), max_upload_pixels=int(args.max_upload_megapixels * 1e6),
        max_output_pixels=int(args.max_output_megapixels * 1e6), preview_interval=args.preview_every,
        allowed_hosts=host_names(args.host, args.allow_host), token=token,
        models_dir=None if args.models_dir is None else Path(os.path.expanduser(args.models_dir)).resolve(),
        max_queued=args.max_queue, keep_uploads_days=args.keep_uploads_days or None,
    )
    if not loopback:
        access = ("only with the access link below (it holds a token)" if token else
                  "without any login (--no-token)")
        print(f"ottex: warning: listening on {args.host}: whoever can reach this machine on port {args.port} can use "
              f"the page, upload images and download the results, {access}; use --host 127.0.0.1 to keep it to "
              "this machine", file=sys.stderr)

    def announce(url: str) -> None:
        link = f"{url}?token={token}" if token else url
        print(f"ottex serve: {link} (results in {workdir}; Ctrl-C stops)", flush=True)

    try:
        serve(config, args.host, args.port, announce=announce)
    except KeyboardInterrupt:  # Ctrl-C is how a server stops: after a clean shutdown, not an error
        pass
    print("ottex serve: stopped", flush=True)
    return 0
