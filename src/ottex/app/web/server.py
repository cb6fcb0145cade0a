"""The web application of ``ottex serve`` (Starlette; run by uvicorn): one page and a small JSON API.

Endpoints (JSON unless said otherwise; an error is ``{"error": message, "option": setting or null}`` with a
4xx status, never a stack trace):

=========================================  ==================================================================
``GET /``                                   the page (``static/index.html``; ``/static/*``: its CSS and JS)
``GET /api/schema``                         tasks, methods and their options (from the registry), limits
``GET /api/status``                         devices, queue counts, networks kept built
``POST /api/uploads?name=FILE``             an image as the request body -> ``{id, name, width, height ...}``
                                            (or a short clip, FILE ending in .mp4/.webm/.mov: ``frames`` set)
``GET /api/uploads?offset=&limit=``         earlier uploads, newest first: ``{"uploads": [...], "total": N}``
``GET /api/uploads/{id}``                   the stored image (``/info``: its record; ``/thumb``: a JPEG)
``POST /api/jobs``                          settings (JSON; ``variations``: that many runs, seeds from
                                            ``seed`` up) -> the queued run (201; ``runs``: all of them)
``GET /api/jobs?offset=&limit=&status=``    ``{"active": [...], "finished": [...], "total": N}`` (``starred=1``)
``GET /api/jobs/{id}``                      one run: status, progress, error, settings, result URLs
``DELETE /api/jobs/{id}``                   remove a finished run and its files
``POST /api/jobs/{id}/star``                ``{"starred": true|false}``
``POST /api/jobs/{id}/cancel``              cancel a queued or running run
``POST /api/jobs/{id}/rerun``               the same settings with ``{"seed": N}`` (default: a random seed)
``GET /api/jobs/{id}/image|thumb|settings`` the full-size PNG (a download), its thumbnail, its settings
``GET /api/jobs/{id}/video``                a clip's result: the MP4 or WebM (its ``thumb``: a strip of frames)
``GET /api/jobs/{id}/preview``              the running run's latest image (JPEG)
``GET /api/jobs/{id}/events``               server-sent events of one run (``progress``, ``state``) to its end
``GET /api/events``                         server-sent events of the whole server (``queue``, ``progress``)
=========================================  ==================================================================

Requests from other sites are refused (an ``Origin`` that is not the server's), and only the host names the
server was started for are answered (loopback names, the name and addresses it listens on, ``--allow-host``:
against DNS rebinding); a server with a ``token`` (any listening beyond loopback) answers only requests that carry
it (the link printed at start sets it as a cookie). JSON bodies are bounded (``MAX_JSON_BYTES``, nesting and
number sizes), settings are checked in full when they are posted (finite numbers, the method's own option checks,
example sizes, mixing weights, weight sets, models from the server's models folder), and responses carry a strict
content security policy and never a number JSON lacks (NaN).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ... import __version__
from ...core.checks import check_example
from ...core.errors import InputError, OttexError
from ...methods.base import get_method
from ...nn.weights import WEIGHT_SETS
from .forms import COLOR, CONTAINERS, RunSettings, form_schema, parse_settings
from .jobs import DEFAULT_KEEP_UNFINISHED, DEFAULT_MAX_QUEUED, FINISHED, JobQueue, QueueFull, WebJob, finite
from .uploads import (
    CLIP_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    MAX_CLIP_BYTES,
    MAX_CLIP_FRAMES,
    NotFound,
    TooLarge,
    UploadStore,
)

__all__ = ["ServerConfig", "create_app", "ServerThread", "serve", "is_loopback", "LOOPBACK_HOSTS", "STATIC"]

log = logging.getLogger("ottex.serve")

STATIC = resources.files("ottex.app.web") / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096
#: Largest JSON body taken (settings are a few hundred bytes), deepest nesting, longest text, largest number.
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 4
MAX_TEXT = 1000
MAX_NUMBER = 2**53
#: Most runs one request may queue (``variations``).
MAX_VARIATIONS = 16
#: Seconds between cleanings of the uploads folder.
CLEAN_SECONDS = 3600
#: A model in the models folder: a plain file name (no path), a PyTorch checkpoint.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.pt")
TOKEN_COOKIE = "ottex_token"
#: How often the event streams look for news, and how often they send a keep-alive comment.
POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 15.0
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
     b"style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


@dataclass
class ServerConfig:
    """What ``ottex serve`` is started with.

    Attributes:
        workdir: folder of the uploads and results (created).
        devices: one worker (one run at a time) per device.
        weights_dir: folder searched first for weights.
        max_upload_bytes, max_upload_pixels: bounds of an uploaded image.
        max_output_pixels: largest image a run may make.
        preview_interval: seconds between preview images of a run.
        allowed_hosts: host names answered (the default: loopback names only).
        keep_networks: networks kept built between runs.
        token: a secret every request must carry (cookie, ``x-ottex-token`` header or ``?token=``; None: none).
        models_dir: folder of the models (checkpoints) runs may use, chosen by file name (default:
            ``<workdir>/models``).
        max_queued: runs waiting at most.
        keep_unfinished: failed and cancelled runs kept.
        keep_uploads_days: uploads no run names are removed after this many days (None: kept).
        max_decodes: uploads decoded at the same time.
    """

    workdir: str | os.PathLike
    devices: Sequence[str] = ("auto",)
    weights_dir: str | os.PathLike | None = None
    max_upload_bytes: int = DEFAULT_MAX_BYTES
    max_upload_pixels: int = DEFAULT_MAX_PIXELS
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS
    preview_interval: float = 1.0
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS
    keep_networks: int = 64
    token: str | None = None
    models_dir: str | os.PathLike | None = None
    max_queued: int = DEFAULT_MAX_QUEUED
    keep_unfinished: int = DEFAULT_KEEP_UNFINISHED
    keep_uploads_days: float | None = 30.0
    max_decodes: int = 2

    def limits(self) -> dict:
        return {"upload_bytes": self.max_upload_bytes, "upload_pixels": self.max_upload_pixels,
                "output_pixels": self.max_output_pixels, "queued": self.max_queued, "variations": MAX_VARIATIONS,
                "clip_bytes": MAX_CLIP_BYTES, "clip_frames": MAX_CLIP_FRAMES, "clip_formats": list(CLIP_FORMATS)}


def host_names(host: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The host names a server listening on ``host`` answers to: the loopback names, ``host`` itself, and for an
    address beyond loopback this machine's name and addresses; plus ``extra`` (``--allow-host``)."""
    names = [*LOOPBACK_HOSTS, host]
    if not is_loopback(host):
        machine = socket.gethostname()
        names += [machine, socket.getfqdn()]
        for name in {host, machine}:
            if name in ("0.0.0.0", "::"):
                continue
            try:
                names += [info[4][0] for info in socket.getaddrinfo(name, None)]
            except OSError:
                pass
        if host in ("0.0.0.0", "::"):  # every address: at least the one the machine reaches the network by
            with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))  # a documentation address: nothing is sent
                names.append(probe.getsockname()[0])
    names += list(extra)
    out = []
    for n in names:
        n = n.strip().lower()
        if ":" in n and not n.startswith("["):
            n = f"[{n}]"  # an IPv6 address, as a Host header writes it
        if n and n not in out:
            out.append(n)
    return tuple(out)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to listen on) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------------------
# Middleware and errors


def _host_name(host: str) -> str:
    """The name of a ``Host`` header: ``"[::1]:8000"`` -> ``"[::1]"``, ``"localhost:8000"`` -> ``"localhost"``."""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookie(scope: Scope) -> str:
    """The token's cookie: one per port (cookies do not tell the ports of a host apart)."""
    server = scope.get("server") or (None, None)
    return f"{TOKEN_COOKIE}_{server[1]}" if server[1] else TOKEN_COOKIE


class _Guard:
    """Security headers on every response; only the allowed host names are answered, requests that change
    something must come from this server's page, and with a token every request must carry it."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS, token: str | None = None) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if _host_name(headers.get("host", "").lower()) not in self.allowed:
            response = JSONResponse({"error": "unknown host name (this server answers the names it was started "
                                     "for; see --allow-host)", "option": None}, status_code=400)
            await response(scope, receive, self._secure(send))
            return
        if self.token is not None:
            given = self._token(scope, headers)
            if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
                response = JSONResponse({"error": "this server needs its access link (printed by ottex serve when "
                                         "it started)", "option": None}, status_code=401)
                await response(scope, receive, self._secure(send))
                return
            if scope["path"] == "/" and "token=" in scope.get("query_string", b"").decode("latin-1"):
                # the access link: keep the token as a cookie, and take it out of the address bar
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(_cookie(scope), self.token, httponly=True, samesite="strict")
                await response(scope, receive, self._secure(send))
                return
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            if origin == "null" or urlsplit(origin).netloc != headers.get("host"):
                response = JSONResponse({"error": "cross-site request refused", "option": None}, status_code=403)
                await response(scope, receive, self._secure(send))
                return
        await self.app(scope, receive, self._secure(send))

    @staticmethod
    def _token(scope: Scope, headers: dict[str, str]) -> str | None:
        if "x-ottex-token" in headers:
            return headers["x-ottex-token"]
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _cookie(scope):
                return value
        for part in scope.get("query_string", b"").decode("latin-1").split("&"):
            name, _, value = part.partition("=")
            if name == "token":
                return value
        return None

    @staticmethod
    def _secure(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        return wrapped


class SafeJSON(JSONResponse):
    """A JSON response that never holds NaN or an infinity (JSON has none; browsers refuse them): such a number,
    should one reach a response, is sent as null."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def _error(message: str, status: int, option: str | None = None) -> JSONResponse:
    return SafeJSON({"error": message, "option": option}, status_code=status)


class BodyTooLarge(TooLarge):
    """A JSON body over :data:`MAX_JSON_BYTES`."""


async def _ottex_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OttexError)
    status = (404 if isinstance(exc, NotFound) else 413 if isinstance(exc, TooLarge) else
              429 if isinstance(exc, QueueFull) else 400)
    return _error(str(exc), status, exc.option)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(str(exc.detail), exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(f"internal error ({type(exc).__name__}); the server's log has the details", 500)


# ----------------------------------------------------------------------------------------------------------
# The application


def _sse(event: str, data: Any) -> str:
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(finite(data), separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {text}\n\n"


def _progress(job: WebJob) -> dict:
    return {"id": job.id, **(job.progress or {})}


def _refuse_constant(name: str) -> Any:
    raise InputError(f"{name} is not a number JSON has (give a finite number)")


def _check_shape(value: Any, depth: int = 0, where: str | None = None) -> None:
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH`, texts over :data:`MAX_TEXT` characters, numbers
    beyond :data:`MAX_NUMBER` (naming the setting: its top-level key)."""
    if depth > MAX_JSON_DEPTH:
        raise InputError(f"{where or 'the request'}: nested too deeply", option=where)
    if isinstance(value, dict):
        for k, v in value.items():  # named by the top-level key, or by the option's name
            _check_shape(v, depth + 1, str(k)[:40] if where in (None, "options") else where)
    elif isinstance(value, list):
        if len(value) > 256:
            raise InputError(f"{where or 'the request'}: too many values ({len(value)})", option=where)
        for v in value:
            _check_shape(v, depth + 1, where)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InputError(f"{where or 'the request'}: text too long ({len(value)} characters)", option=where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise InputError(f"{where or 'a number'} is too large: {str(value)[:20]}...", option=where)


async def _json_body(request: Request) -> Any:
    """The request's JSON, read up to :data:`MAX_JSON_BYTES` (413 beyond, before the rest is read)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise BodyTooLarge(f"the request body is too large ({int(length)} bytes; settings take at most "
                           f"{MAX_JSON_BYTES})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise BodyTooLarge(f"the request body is too large (over {MAX_JSON_BYTES} bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return {}
    if body.count(b"[") + body.count(b"{") > 4096:
        raise InputError("the request body is nested too deeply")
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError("the request body is nested too deeply") from None
    except InputError:
        raise
    except ValueError:
        raise InputError("the request body is not JSON") from None
    _check_shape(data)
    return data


_TEXT_SETTINGS = ("task", "method", "preserve_color", "temporal", "frames", "container")
_NUMBER_SETTINGS = ("width", "height", "size", "seed", "rotations", "variations", "blend")


def _check_types(data: Any) -> None:
    """The settings' JSON types, before they are read: a wrong one is a 400 naming the setting."""
    if not isinstance(data, dict):
        raise InputError("the settings must be a JSON object")
    for key in _TEXT_SETTINGS:
        v = data.get(key)
        if v is not None and not isinstance(v, (str, bool)):
            raise InputError(f"{key} must be text, got {json.dumps(v)[:40]}", option=key)
    for key in _NUMBER_SETTINGS:
        v = data.get(key)
        if v is not None and not isinstance(v, (int, float, str)):
            raise InputError(f"{key} must be a number, got {json.dumps(v)[:40]}", option=key)
    for key in ("style", "content"):
        v = data.get(key)
        if v is not None and not isinstance(v, (str, list)):
            raise InputError(f"{key} must be upload ids, got {json.dumps(v)[:40]}", option=key)
    options = data.get("options")
    if options is not None:
        if not isinstance(options, dict):
            raise InputError("options must be a JSON object of option values", option="options")
        for name, v in options.items():
            if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)):
                raise InputError(f"{name} takes a value or a list of values, got {json.dumps(v)[:40]}", option=name)


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    return False


def weight_choices(help_text: str, default: str) -> list[str]:
    """The registered weight sets an option's help offers (names outside parentheses first, as the help lists
    its choices), the default first; all registered sets if the help names none."""
    def found(text: str) -> list[str]:
        hits = [(m.start(), name) for name in WEIGHT_SETS
                for m in [re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)] if m]
        return [name for _, name in sorted(hits)]

    names = found(re.sub(r"\([^)]*\)", "", help_text)) or found(help_text) or list(WEIGHT_SETS)
    return [default, *(n for n in names if n != default)] if default in WEIGHT_SETS else names


def create_app(config: ServerConfig) -> Starlette:
    """The application: its queue starts with the server (lifespan) and stops with it.

    ``app.state.queue`` (:class:`~ottex.app.web.jobs.JobQueue`) and ``app.state.uploads``
    (:class:`~ottex.app.web.uploads.UploadStore`) are the server's state.
    """
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    models = Path(config.models_dir) if config.models_dir is not None else workdir / "models"
    models.mkdir(parents=True, exist_ok=True)
    keep = None if config.keep_uploads_days is None else config.keep_uploads_days * 86400
    uploads = UploadStore(workdir, config.max_upload_bytes, config.max_upload_pixels, config.max_decodes, keep)

    def model_names() -> list[str]:
        return sorted(p.name for p in models.glob("*.pt") if MODEL_NAME.fullmatch(p.name) and p.is_file())

    def check(settings: RunSettings) -> RunSettings:
        """What the run would refuse once started, refused now (400, naming the setting)."""
        for name, value in settings.values.items():
            if _not_finite(value):
                raise InputError(f"{name} must be a finite number, got {json.dumps(settings.options.get(name))[:40]}",
                                 option=name)
        for role, ids in (("style", settings.style), ("content", [settings.content] if settings.content else [])):
            for upload_id in ids:
                info = uploads.info(upload_id)
                check_example(torch.empty((1, 3, info.height, info.width), device="meta"), role)  # the library's
        if settings.task == COLOR or settings.method is None:
            return settings
        method = get_method(settings.method, settings.task)
        specs = {s.name: s for s in method.option_specs(settings.task)}
        mix = settings.values.get("mix")
        if mix is not None and len(settings.style) > 1:
            if len(mix) != len(settings.style):
                raise InputError(f"{len(mix)} mixing weights given for {len(settings.style)} styles", option="mix")
            if any(w < 0 for w in mix) or sum(mix) <= 0:
                raise InputError(f"mixing weights must be non-negative and not all zero, got "
                                 f"{','.join(f'{w:g}' for w in mix)}", option="mix")
        variation = settings.values.get("mix_variation")
        if variation is not None and not 0 <= variation <= 1:
            raise InputError(f"mix variation must be between 0 and 1, got {variation:g}", option="mix_variation")
        if "weights" in specs and "weights" in settings.values:
            spec = specs["weights"]
            choices = weight_choices(spec.help, spec.default)
            if settings.values["weights"] not in choices:
                raise InputError(f"weights must be one of {', '.join(choices)}, got "
                                 f"{str(settings.values['weights'])[:40]!r}", option="weights")
        return settings

    def model_path(data: Any) -> Any:
        """``data`` with its ``options.model``, a name in the models folder, made that file's path (a copy: the
        caller's data, which the record keeps, holds the name); the name is checked before anything else looks at
        it, so the answer never tells whether some other file exists."""
        options = data.get("options") if isinstance(data, dict) else None
        if not isinstance(options, dict) or "model" not in options:
            return data
        name, names = options["model"], model_names()
        if name not in names:
            where = f"one of {', '.join(names)}" if names else "none yet: put checkpoints (.pt) of 'ottex train' " \
                "in the server's models folder"
            raise InputError(f"model: no model {str(name)[:60]!r} in the server's models folder ({where})",
                             option="model")
        return {**data, "options": {**options, "model": str(models / name)}}

    def parse(data: Any) -> RunSettings:
        _check_types(data)
        settings = check(parse_settings(model_path(data), uploads, config.max_output_pixels))
        if "model" in settings.options:  # the record (settings.to_json) keeps the name, the run the path
            settings.options["model"] = data["options"]["model"]
        return settings

    queue = JobQueue(workdir, uploads, config.devices, config.weights_dir, config.preview_interval,
                     keep_networks_limit=config.keep_networks, max_queued=config.max_queued,
                     keep_unfinished=config.keep_unfinished, parse=parse)

    def schema_data() -> dict:
        data = form_schema(config.limits())
        names = model_names()
        for m in data["methods"]:
            method = get_method(m["name"])
            specs = {s.name: s for s in method.option_specs()}
            for o in m["options"]:
                if o["name"] == "weights":
                    o["widget"], o["choices"] = "choice", weight_choices(specs["weights"].help, o["default"])
                elif o["name"] == "model":
                    o["widget"], o["choices"] = "choice", names
                    o["help"] += (" (checkpoints in the server's models folder)" if names else
                                  " (none on this server yet: put checkpoints (.pt) of 'ottex train' in its models "
                                  "folder)")
        return data

    async def page(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html",
                            headers={"cache-control": "no-cache"})

    async def schema(request: Request) -> Response:
        return SafeJSON(await run_in_threadpool(schema_data))

    async def status(request: Request) -> Response:
        return SafeJSON({"version": __version__, **queue.status(), "limits": config.limits()})

    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > uploads.max_bytes:
            raise uploads.too_many_bytes(int(length))
        tmp, fd = uploads.open_temp()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > uploads.max_bytes:
                        raise uploads.too_many_bytes()
                    fh.write(chunk)
        except ClientDisconnect:  # the client left mid-upload: nothing to keep, nobody to answer
            tmp.unlink(missing_ok=True)
            return Response(status_code=400)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        info = await run_in_threadpool(uploads.add_file, tmp, request.query_params.get("name"))
        return SafeJSON(_upload_json(info), status_code=201)

    def _upload_json(info: Any) -> dict:
        return {**info.to_json(), "url": f"/api/uploads/{info.id}", "thumb": f"/api/uploads/{info.id}/thumb"}

    async def upload_list(request: Request) -> Response:
        offset, limit = _page(request, 24)
        found, total = await run_in_threadpool(uploads.recent, offset, limit)
        return SafeJSON({"uploads": [_upload_json(i) for i in found], "total": total})

    async def upload_file(request: Request) -> Response:
        path = uploads.path(request.path_params["id"])
        return FileResponse(str(path), headers={"cache-control": "private, max-age=86400"})

    async def upload_info(request: Request) -> Response:
        return SafeJSON(_upload_json(uploads.info(request.path_params["id"])))

    async def upload_thumb(request: Request) -> Response:
        path = await run_in_threadpool(uploads.thumb, request.path_params["id"])
        return FileResponse(str(path), media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})

    async def submit(request: Request) -> Response:
        data = await _json_body(request)
        _check_types(data)
        count = data.pop("variations", None)
        count = 1 if count in (None, "") else count
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_VARIATIONS:
            raise InputError(f"variations must be a whole number from 1 to {MAX_VARIATIONS}, got {str(count)[:20]}",
                             option="variations")
        first = await run_in_threadpool(parse, data)
        runs = [first]
        for k in range(1, count):  # the same settings with the next seeds
            runs.append(await run_in_threadpool(parse, {**data, "seed": (first.seed + k) % (2**53)}))
        made = queue.submit_many(runs)
        return SafeJSON({**made[0].summary(), "runs": [j.id for j in made]}, status_code=201)

    def _page(request: Request, default: int) -> tuple[int, int]:
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", default))
        except ValueError:
            raise InputError("offset and limit must be whole numbers", option="offset") from None
        return max(0, offset), min(max(1, limit), 1000)

    async def jobs(request: Request) -> Response:
        offset, limit = _page(request, 1000)
        status = request.query_params.get("status") or None
        if status is not None and status not in FINISHED:
            raise InputError(f"status must be one of {', '.join(FINISHED)}", option="status")
        starred = request.query_params.get("starred") in ("1", "true")
        return SafeJSON({"active": queue.active(), "finished": queue.finished(offset, limit, status, starred),
                         "total": queue.count_finished(status, starred), "offset": offset})

    async def job(request: Request) -> Response:
        return SafeJSON(queue.get(request.path_params["id"]).summary())

    async def delete(request: Request) -> Response:
        await run_in_threadpool(queue.delete, request.path_params["id"])
        return Response(status_code=204)

    async def star(request: Request) -> Response:
        data = await _json_body(request)
        starred = data.get("starred", True) if isinstance(data, dict) else None
        if not isinstance(starred, bool):
            raise InputError("starred must be true or false", option="starred")
        return SafeJSON(queue.star(request.path_params["id"], starred).summary())

    async def cancel(request: Request) -> Response:
        return SafeJSON(queue.cancel(request.path_params["id"]).summary())

    async def rerun(request: Request) -> Response:
        old = queue.get(request.path_params["id"])
        data = await _json_body(request)
        if not isinstance(data, dict):
            raise InputError("the request body must be a JSON object")
        seed = data.get("seed")
        if seed is None:
            seed = secrets.randbelow(2**31)
        settings = await run_in_threadpool(parse, {**old.record, "seed": seed})
        return SafeJSON(queue.submit(settings).summary(), status_code=201)

    async def result(request: Request) -> Response:
        job_id, what = request.path_params["id"], request.path_params["what"]
        if what not in ("image", "video", "thumb", "settings"):
            raise NotFound(f"no such thing as {what[:40]!r} for a run", option="job")
        path = queue.result_path(job_id, what)
        if path.suffix[1:] in CONTAINERS:  # a clip's video: .mp4 or .webm
            rec = queue.get(job_id).record
            name = f"ottex_{rec.get('method')}_clip_s{rec.get('seed')}_{job_id}{path.suffix}"
            return FileResponse(str(path), media_type=CONTAINERS[path.suffix[1:]], filename=name)
        if what == "image":
            rec = queue.get(job_id).record
            name = f"ottex_{rec.get('method') or 'color'}_{rec.get('task')}_s{rec.get('seed')}_{job_id}.png"
            return FileResponse(str(path), media_type="image/png", filename=name)
        if what == "settings" and request.query_params.get("download"):
            return FileResponse(str(path), media_type="application/json", filename=f"ottex_{job_id}.json")
        return FileResponse(str(path))

    async def preview(request: Request) -> Response:
        data = queue.get(request.path_params["id"]).preview
        if data is None:
            raise NotFound("no preview of this run now", option="job")
        return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def job_events(request: Request) -> Response:
        job = queue.get(request.path_params["id"])

        async def stream() -> AsyncIterator[str]:
            sent_state, sent_progress, beat = None, -1, time.monotonic()
            while True:
                state = (job.status, job.cancel_requested)
                if job.progress_count != sent_progress:
                    sent_progress = job.progress_count
                    if job.progress is not None:
                        yield _sse("progress", _progress(job))
                if state != sent_state:
                    sent_state = state
                    yield _sse("state", job.summary())
                    if job.status in FINISHED:
                        return
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            revision, sent, beat = -1, {}, time.monotonic()
            while True:
                if queue.revision != revision:
                    revision = queue.revision
                    yield _sse("queue", {"active": queue.active(), "status": queue.status()})
                for item in queue.active():
                    if item["status"] != "running":
                        continue
                    running = queue.get(item["id"])
                    if running.progress is not None and sent.get(running.id) != running.progress_count:
                        sent[running.id] = running.progress_count
                        yield _sse("progress", _progress(running))
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    def clean() -> None:
        gone = uploads.clean(keep=queue.uploads_in_use())
        if gone:
            log.info("removed %d old uploads and unfinished upload files", gone)

    async def cleaner() -> None:
        while True:
            await asyncio.sleep(CLEAN_SECONDS)
            await run_in_threadpool(clean)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(clean)
        queue.start()
        task = asyncio.get_running_loop().create_task(cleaner())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(queue.stop)

    routes = [
        Route("/", page),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        Route("/api/schema", schema),
        Route("/api/status", status),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads", upload_list, methods=["GET"]),
        Route("/api/uploads/{id}", upload_file),
        Route("/api/uploads/{id}/info", upload_info),
        Route("/api/uploads/{id}/thumb", upload_thumb),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs", jobs, methods=["GET"]),
        Route("/api/jobs/{id}", job, methods=["GET"]),
        Route("/api/jobs/{id}", delete, methods=["DELETE"]),
        Route("/api/jobs/{id}/star", star, methods=["POST"]),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{id}/rerun", rerun, methods=["POST"]),
        Route("/api/jobs/{id}/preview", preview),
        Route("/api/jobs/{id}/events", job_events),
        Route("/api/jobs/{id}/{what:str}", result),
        Route("/api/events", events),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(_Guard, allowed_hosts=config.allowed_hosts, token=config.token)],
        lifespan=lifespan,
        exception_handlers={OttexError: _ottex_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.queue = queue
    app.state.uploads = uploads
    app.state.config = config
    app.state.models = models
    queue.private_folders[:0] = [(str(models.resolve()), "models/"), (str(models), "models/")]
    return app


# ----------------------------------------------------------------------------------------------------------
# Running it


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with ``IPPROTO_TCP`` so that asyncio sets ``TCP_NODELAY`` on its connections
    (with protocol 0 it does not, and every response after the first on a connection waits 40 ms for an ACK)."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OttexError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", option="port") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT/`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class ServerThread:
    """A server on a background thread (tests, scripts): ``with ServerThread(app) as url: ...``.

    Args:
        app: the application.
        host: address to listen on.
        port: port (0: a free one).
    """

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = _bind(host, port)
        self.url = url_of(self.sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000,
          announce: Callable[[str], None] = print) -> None:
    """Run the server until interrupted; ``announce`` gets the URL once the socket listens."""
    app = create_app(config)
    sock = _bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    announce(url_of(sock))  # connections wait in the socket's backlog until the server takes them
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()

