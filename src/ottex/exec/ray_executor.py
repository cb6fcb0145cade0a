"""Jobs on a Ray cluster: long-lived worker actors that keep the networks loaded and take job after job.

Needs the ``ray`` extra (``pip install "ottex[ray]"``). :class:`RayExecutor` joins a cluster
(``address="auto"`` or ``"HOST:PORT"``) or starts a local one (no address). Each worker is an actor holding a
:class:`~ottex.exec.local.LocalExecutor` (the same job contract as the local executor) in a process that keeps
the networks it builds (:func:`ottex.nn.networks.keep_networks`), so the networks are loaded once per worker,
not once per job. A worker asks for ``gpus_per_job`` GPUs (fractions allowed: 0.5 puts two workers on a GPU) when the
cluster has GPUs, otherwise ``cpus_per_job`` CPUs. Jobs travel as paths and settings (a few hundred bytes): the
workers read the inputs and write the outputs themselves (atomically, with the job key inside), so images never
pass through the driver; on several machines the inputs and the output folder must be on storage every node
sees (a shared or network file system).

A job whose worker dies (a lost node, a crash) comes back as a retryable :class:`~ottex.exec.batch.JobFailure`
and a new worker takes the dead one's place.

Example:
    >>> from ottex.exec.batch import run_batch
    >>> ex = RayExecutor(address=None, cpus_per_job=1)  # doctest: +SKIP
    >>> summary = run_batch(jobs, ex, retries=2, report="failures.jsonl"); ex.close()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, InputError
from ..nn.networks import keep_networks
from .batch import JobFailure, Result
from .local import Job, LocalExecutor

__all__ = ["RayExecutor", "ray_available"]

_INSTALL = 'the Ray executor needs Ray: pip install "ottex[ray]"'
#: Networks a worker keeps (:func:`ottex.nn.networks.keep_networks`): a method's levels, a few weight sets.
KEPT_NETWORKS = 32


def ray_available() -> bool:
    """Whether Ray can be imported."""
    try:
        import ray  # noqa: F401, PLC0415 - the extra is optional
    except ImportError:
        return False
    return True


def _ray() -> Any:
    try:
        import ray  # noqa: PLC0415 - the extra is optional: imported when the Ray executor is used
    except ImportError:
        raise InputError(_INSTALL, option="executor") from None
    return ray


class _Worker:
    """A Ray actor: one LocalExecutor in a long-lived process; jobs in, output paths (or a failure) out."""

    def __init__(self, device: Any, weights_dir: str | None, threads: int) -> None:
        import torch  # noqa: PLC0415 - in the worker process

        torch.set_num_threads(max(1, threads))
        keep_networks(KEPT_NETWORKS)  # this process lives for many jobs: build each network once
        self.executor = LocalExecutor(device, weights_dir)
        self.jobs = 0

    def run(self, job: Job) -> Result:
        self.jobs += 1
        try:
            return self.executor.run_one(job)
        except Cancelled as exc:
            return JobFailure.from_exception(exc)
        except Exception as exc:  # noqa: BLE001 - a job's failure goes back to the driver, the worker lives on
            return JobFailure.from_exception(exc)

    def info(self) -> dict[str, Any]:
        import ray  # noqa: PLC0415 - in the worker process, where Ray is there

        return {"pid": os.getpid(), "jobs": self.jobs, "device": str(self.executor.device),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


class RayExecutor:
    """Runs jobs on Ray worker actors (see the module docstring).

    Args:
        address: ``"auto"`` or ``"HOST:PORT"`` joins a running cluster; None starts a local one (or uses the Ray
            session this process already started).
        workers: the number of worker actors [as many as the cluster's GPUs (or CPUs) hold at the per-job
            amounts, at most the number of jobs].
        gpus_per_job: GPUs per worker (fractions allowed) [1 when the cluster has GPUs, else 0].
        cpus_per_job: CPUs per worker (and its torch threads) [1].
        device: the workers' device [``"auto"``: CUDA where the worker was given a GPU].
        weights_dir: folder searched first for weights, on the workers' machines.
        num_cpus: CPUs of a local cluster started here [all].
        env: environment variables of the workers of a local cluster (PYTHONPATH is set so that they import
            this process's ottex).

    Raises:
        InputError: Ray is not installed, or bad resource amounts.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        gpus_per_job: float | None = None,
        cpus_per_job: float = 1,
        device: Any = "auto",
        weights_dir: str | os.PathLike | None = None,
        num_cpus: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        ray = _ray()
        if gpus_per_job is not None and not 0 <= gpus_per_job:
            raise InputError(f"gpus per job must be at least 0, got {gpus_per_job}", option="gpus_per_job")
        if not cpus_per_job > 0:
            raise InputError(f"cpus per job must be positive, got {cpus_per_job}", option="cpus_per_job")
        if workers is not None and workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}", option="workers")
        self.started_ray = False
        if not ray.is_initialized():
            # "local": always a new cluster of this process, never one that `ray start` left running here
            kwargs: dict[str, Any] = {"address": address or "local", "include_dashboard": False,
                                      "log_to_driver": False}
            if address is None:
                src = str(Path(__file__).resolve().parents[2])  # the folder holding this ottex package
                paths = [src, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
                env_vars = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
                            "OMP_NUM_THREADS": str(max(1, int(cpus_per_job)))}
                env_vars.update({k: v for k, v in os.environ.items() if k.startswith("OTTEX_")})
                env_vars.update(env or {})
                kwargs.update(num_cpus=num_cpus, runtime_env={"env_vars": env_vars})
            try:
                ray.init(logging_level=logging.WARNING, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                raise InputError(f"cannot start or join {where}: {exc}", option="ray_address") from None
            self.started_ray = True
        resources = ray.cluster_resources()
        self.cluster_gpus = float(resources.get("GPU", 0))
        self.cluster_cpus = float(resources.get("CPU", 1))
        self.gpus_per_job = float(gpus_per_job if gpus_per_job is not None else (1 if self.cluster_gpus else 0))
        if self.gpus_per_job > self.cluster_gpus:
            raise InputError(f"gpus per job ({self.gpus_per_job:g}) exceeds the cluster's GPUs "
                             f"({self.cluster_gpus:g})", option="gpus_per_job")
        self.cpus_per_job = float(cpus_per_job)
        if self.gpus_per_job > 0:
            fit = int(self.cluster_gpus / self.gpus_per_job + 1e-9)
        else:
            fit = int(self.cluster_cpus / self.cpus_per_job + 1e-9)
        if workers is not None and workers > fit:
            warnings.warn(f"the cluster holds {fit} worker(s) at {self._amount()} per job; using {fit}, not {workers}",
                          stacklevel=2)
        self.max_workers = max(1, min(workers, fit) if workers is not None else fit)
        self.device = device
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self.actors: list[Any] = []
        self.replaced = 0
        self._cls = ray.remote(num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job, max_restarts=0,
                               max_concurrency=1)(_Worker)

    def _amount(self) -> str:
        return f"{self.gpus_per_job:g} GPU" if self.gpus_per_job > 0 else f"{self.cpus_per_job:g} CPU"

    @property
    def workers(self) -> int:
        return len(self.actors) or self.max_workers

    def _new_actor(self) -> Any:
        return self._cls.remote(self.device, self.weights_dir, max(1, int(self.cpus_per_job)))

    def _ensure(self, count: int) -> None:
        while len(self.actors) < min(count, self.max_workers):
            self.actors.append(self._new_actor())

    def map_unordered(self, jobs: Sequence[Job], started: Callable[[int], None]) -> Iterator[tuple[int, Result]]:
        """Run the jobs on the workers, at most one job per worker at a time; yield results as they come."""
        ray = _ray()
        from ray.exceptions import RayActorError, RayError  # noqa: PLC0415 - the extra is optional

        self._ensure(len(jobs))
        queue = deque(enumerate(jobs))
        idle = list(range(len(self.actors)))
        inflight: dict[Any, tuple[int, int]] = {}
        while queue or inflight:
            while queue and idle:
                slot = idle.pop()
                i, job = queue.popleft()
                started(i)
                inflight[self.actors[slot].run.remote(job)] = (i, slot)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                i, slot = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError as exc:  # the worker died (crash, lost node): replace it, retry the job
                    result = JobFailure("WorkerDied", f"the worker running the job died: {str(exc)[:300]}", True)
                    self.actors[slot] = self._new_actor()
                    self.replaced += 1
                except RayError as exc:
                    result = JobFailure(type(exc).__name__, str(exc)[:1000], True)
                idle.append(slot)
                yield i, result

    def info(self) -> list[dict[str, Any]]:
        """Each worker's process id, jobs taken, device and the GPUs Ray gave it."""
        ray = _ray()
        return ray.get([a.info.remote() for a in self.actors])

    def close(self) -> None:
        """Stop the workers (and the local cluster started here)."""
        ray = _ray()
        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
