"""The web application of ``ottex serve`` (Starlette; run by uvicorn): one page and a small JSON API.

Endpoints (JSON unless said otherwise; an error is ``{"error": message, "option": setting or null}`` with a
4xx status, never a stack trace):

=========================================  ==================================================================
``GET /``                                   the page (``static/index.html``; ``/static/*``: its CSS and JS)
``GET /api/schema``                         tasks, methods and their options (from the registry), limits
``GET /api/status``                         devices, queue counts, networks kept built
``POST /api/uploads?name=FILE``             an image as the request body -> ``{id, name, width, height ...}``
``GET /api/uploads/{id}``                   the stored image (``/info``: its record)
``POST /api/jobs``                          settings (JSON) -> the queued run (201)
``GET /api/jobs``                           ``{"active": [...], "finished": [...]}``
``GET /api/jobs/{id}``                      one run: status, progress, error, settings, result URLs
``POST /api/jobs/{id}/cancel``              cancel a queued or running run
``POST /api/jobs/{id}/rerun``               the same settings with ``{"seed": N}`` (default: a random seed)
``GET /api/jobs/{id}/image|thumb|settings`` the full-size PNG (a download), its thumbnail, its settings
``GET /api/jobs/{id}/preview``              the running run's latest image (JPEG)
``GET /api/jobs/{id}/events``               server-sent events of one run (``progress``, ``state``) to its end
``GET /api/events``                         server-sent events of the whole server (``queue``, ``progress``)
=========================================  ==================================================================

Requests from other sites are refused (an ``Origin`` that is not the server's), and by default only loopback
host names are answered (against DNS rebinding); responses carry a strict content security policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
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

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ... import __version__
from ...core.errors import InputError, OttexError
from .forms import form_schema, parse_settings
from .jobs import FINISHED, JobQueue, WebJob
from .uploads import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, NotFound, TooLarge, UploadStore

__all__ = ["ServerConfig", "create_app", "ServerThread", "serve", "is_loopback", "LOOPBACK_HOSTS", "STATIC"]

log = logging.getLogger("ottex.serve")

STATIC = resources.files("ottex.app.web") / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096
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
        allowed_hosts: host names answered (None: any; the default: loopback names only).
        keep_networks: networks kept built between runs.
    """

    workdir: str | os.PathLike
    devices: Sequence[str] = ("auto",)
    weights_dir: str | os.PathLike | None = None
    max_upload_bytes: int = DEFAULT_MAX_BYTES
    max_upload_pixels: int = DEFAULT_MAX_PIXELS
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS
    preview_interval: float = 1.0
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS
    keep_networks: int = 64

    def limits(self) -> dict:
        return {"upload_bytes": self.max_upload_bytes, "upload_pixels": self.max_upload_pixels,
                "output_pixels": self.max_output_pixels}


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


class _Guard:
    """Security headers on every response; only the allowed host names are answered (None: any), and requests
    that change something must come from this server's page."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None = None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed is not None and _host_name(headers.get("host", "").lower()) not in self.allowed:
            response = JSONResponse({"error": "unknown host name (this server answers its loopback names only)",
                                     "option": None}, status_code=400)
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
    def _secure(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        return wrapped


def _error(message: str, status: int, option: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "option": option}, status_code=status)


async def _ottex_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OttexError)
    status = 404 if isinstance(exc, NotFound) else 413 if isinstance(exc, TooLarge) else 400
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
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _progress(job: WebJob) -> dict:
    return {"id": job.id, **(job.progress or {})}


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise InputError("the request body is not JSON") from None


def create_app(config: ServerConfig) -> Starlette:
    """The application: its queue starts with the server (lifespan) and stops with it.

    ``app.state.queue`` (:class:`~ottex.app.web.jobs.JobQueue`) and ``app.state.uploads``
    (:class:`~ottex.app.web.uploads.UploadStore`) are the server's state.
    """
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    uploads = UploadStore(workdir, config.max_upload_bytes, config.max_upload_pixels)
    queue = JobQueue(workdir, uploads, config.devices, config.weights_dir, config.preview_interval,
                     keep_networks_limit=config.keep_networks)

    async def page(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html",
                            headers={"cache-control": "no-cache"})

    async def schema(request: Request) -> Response:
        return JSONResponse(form_schema(config.limits()))

    async def status(request: Request) -> Response:
        return JSONResponse({"version": __version__, **queue.status(), "limits": config.limits()})

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
        return JSONResponse({**info.to_json(), "url": f"/api/uploads/{info.id}"}, status_code=201)

    async def upload_file(request: Request) -> Response:
        path = uploads.path(request.path_params["id"])
        return FileResponse(str(path), headers={"cache-control": "private, max-age=86400"})

    async def upload_info(request: Request) -> Response:
        return JSONResponse(uploads.info(request.path_params["id"]).to_json())

    async def submit(request: Request) -> Response:
        data = await _json_body(request)
        settings = await run_in_threadpool(parse_settings, data, uploads, config.max_output_pixels)
        job = queue.submit(settings)
        return JSONResponse(job.summary(), status_code=201)

    async def jobs(request: Request) -> Response:
        return JSONResponse({"active": queue.active(), "finished": queue.finished()})

    async def job(request: Request) -> Response:
        return JSONResponse(queue.get(request.path_params["id"]).summary())

    async def cancel(request: Request) -> Response:
        return JSONResponse(queue.cancel(request.path_params["id"]).summary())

    async def rerun(request: Request) -> Response:
        old = queue.get(request.path_params["id"])
        data = await _json_body(request)
        if not isinstance(data, dict):
            raise InputError("the request body must be a JSON object")
        seed = data.get("seed")
        if seed is None:
            seed = secrets.randbelow(2**31)
        settings = await run_in_threadpool(parse_settings, {**old.record, "seed": seed}, uploads,
                                           config.max_output_pixels)
        return JSONResponse(queue.submit(settings).summary(), status_code=201)

    async def result(request: Request) -> Response:
        job_id, what = request.path_params["id"], request.path_params["what"]
        if what not in ("image", "thumb", "settings"):
            raise NotFound(f"no such thing as {what[:40]!r} for a run", option="job")
        path = queue.result_path(job_id, what)
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(queue.stop)

    routes = [
        Route("/", page),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        Route("/api/schema", schema),
        Route("/api/status", status),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads/{id}", upload_file),
        Route("/api/uploads/{id}/info", upload_info),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs", jobs, methods=["GET"]),
        Route("/api/jobs/{id}", job),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{id}/rerun", rerun, methods=["POST"]),
        Route("/api/jobs/{id}/preview", preview),
        Route("/api/jobs/{id}/events", job_events),
        Route("/api/jobs/{id}/{what:str}", result),
        Route("/api/events", events),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(_Guard, allowed_hosts=config.allowed_hosts)], lifespan=lifespan,
        exception_handlers={OttexError: _ottex_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.queue = queue
    app.state.uploads = uploads
    app.state.config = config
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

