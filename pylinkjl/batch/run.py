"""Batch relinking: many links, each planned and then run as its own LLD process, several at a time.

    results = relink_many(["a.a", "b.a"], out_dir="out", target="windows-x86_64", jobs=4)

Each item is planned in the calling thread (plans are pure, so a bad input fails on its own without
costing a link) and handed to a thread pool as soon as it is planned, so planning overlaps with the
links already running. Each worker calls :func:`pylinkjl.link.run.execute`, the pipeline ``pylinkjl link``
runs too: every link is its own LLD process, its output checked (and verified, and its ``.ji`` resealed)
on the staged file before the rename. LLD's own ``--threads`` is capped so that ``jobs x threads``
stays near the core count. One failure does not stop the others.

Ctrl-C reaches only the main thread. It waits for results in short slices, and on KeyboardInterrupt
it cancels what has not started, kills the running LLDs (:func:`pylinkjl.process.kill_running`) until
every worker has returned, and raises :class:`BatchInterrupted`. A killed link leaves nothing behind
(the runner discards its staging folder), so there are no partial outputs.

Before anything runs, the files of the whole batch are compared (:mod:`pylinkjl.batch.claims`): an item
that would overwrite another item's input, or write what another item writes, is refused.

Manifests are read by :mod:`pylinkjl.batch.manifest`. An item without an output goes to ``out_dir`` (default:
beside its first input) as the input's stem plus the target's extension.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pylinkjl.batch.claims import Uses, refusals
from pylinkjl.batch.items import BatchInterrupted, BatchItem, ItemResult, PathLike
from pylinkjl.errors import InputError, PylinkjlError, TargetError, VerificationError
from pylinkjl.target import Target, host_target, parse_target

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from pylinkjl.link.api import SharedLinkOptions
    from pylinkjl.link.plan import LinkPlan

log = logging.getLogger("pylinkjl.batch.run")

_POLL_SECONDS = 0.1  # how long the main thread waits at a time (Ctrl-C latency)


# -- planning ----------------------------------------------------------------------------------------

def cpu_count() -> int:
    """CPUs this process may use (affinity and cgroup-aware where Python can tell)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        return counter() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def lld_threads(jobs: int, cpus: int) -> int:
    """LLD's ``--threads`` for each of ``jobs`` parallel links, so the total stays near ``cpus``."""
    return max(1, cpus // max(1, jobs))


@dataclass(frozen=True)
class Parallelism:
    cpus: int
    jobs: int  # links at once: never more than there are items
    threads: int  # LLD's --threads for each link


def parallelism(jobs: int | None, items: int) -> Parallelism:
    """How a batch of ``items`` links runs: ``jobs`` at a time (default: the CPU count), LLD threads capped.
    Raises TargetError for a ``jobs`` below 1."""
    cpus = cpu_count()
    if jobs is None:
        jobs = cpus
    if jobs < 1:
        raise TargetError(f"--jobs must be at least 1, not {jobs}")
    jobs = min(jobs, max(1, items))
    return Parallelism(cpus, jobs, lld_threads(jobs, cpus))


def _as_item(entry: BatchItem | PathLike | Sequence[PathLike]) -> BatchItem:
    if isinstance(entry, BatchItem):
        return entry
    if isinstance(entry, (str, os.PathLike)):
        return BatchItem(inputs=(Path(entry),))
    return BatchItem(inputs=tuple(Path(p) for p in entry))


def default_output(item: BatchItem, target: Target, out_dir: Path | None) -> Path:
    first = item.inputs[0]
    folder = out_dir if out_dir is not None else first.parent
    return folder / f"{first.stem}.{target.dlext}"


@dataclass(frozen=True)
class _Planned:
    index: int
    item: BatchItem
    target: Target | None
    output: Path | None
    plan: LinkPlan | None
    error: PylinkjlError | None


def _resolve(item: BatchItem, target: Target | None, out_dir: Path | None) -> tuple[Target, Path]:
    """The item's target and output (what the claims are compared on); raises the errors of a bad target."""
    if not item.inputs:
        raise InputError(None, "a batch item has no input")
    if isinstance(item.target, Target):
        item_target = item.target
    elif item.target:
        item_target = parse_target(item.target)
    else:
        item_target = target or host_target()
    return item_target, item.output if item.output is not None else default_output(item, item_target, out_dir)


def _plan_item(index: int, item: BatchItem, *, target: Target | None, julia_version: str | None,
               out_dir: Path | None, threads: int, options: dict[str, Any],
               refused: PylinkjlError | None = None) -> _Planned:
    from pylinkjl.link.api import link_request
    from pylinkjl.link.plan import plan_link

    item_target: Target | None = None
    output: Path | None = None
    try:
        item_target, output = _resolve(item, target, out_dir)
        if refused is not None:
            raise refused
        request = link_request(list(item.inputs), output, target=item_target, threads=threads,
                               julia_version=item.julia_version or julia_version, **options)
        return _Planned(index, item, item_target, output, plan_link(request), None)
    except PylinkjlError as err:
        return _Planned(index, item, item_target, output, None, err)


def before_running(batch: Sequence[BatchItem], target: Target | None, out_dir: Path | None) -> dict[int, InputError]:
    """What the whole batch settles before anything runs: the items whose output (or .ji) is another item's
    input or output (:mod:`pylinkjl.batch.claims`) are refused, and what killed pylinkjl processes left in
    the output folders is removed (once per folder, :mod:`pylinkjl.fs.leftovers`). An item with a bad target
    reads and writes nothing (planning reports it)."""
    from pylinkjl.fs.leftovers import clean_stale

    uses = []
    for index, item in enumerate(batch):
        try:
            output = _resolve(item, target, out_dir)[1]
        except PylinkjlError:
            continue
        uses.append(Uses(index, item.inputs, output, item.ji))
    folders = [p.parent for u in uses for p in (u.output, u.ji) if p is not None]
    for folder in dict.fromkeys(os.path.abspath(f) for f in folders):
        clean_stale(folder)
    return refusals(uses)


# -- running -----------------------------------------------------------------------------------------

class _Worker:
    """What the pool threads share: the cancel flag, their thread ids, the options of every link."""

    def __init__(self, verify: bool, force_response_file: bool) -> None:
        self.cancel = threading.Event()
        self.threads: set[int] = set()
        self.active = 0  # items being run right now
        self.lock = threading.Lock()
        self.verify = verify
        self.force_response_file = force_response_file

    def run(self, p: _Planned) -> ItemResult:
        with self.lock:
            self.threads.add(threading.get_ident())
            self.active += 1
        started = time.perf_counter()
        try:
            if self.cancel.is_set():
                return _result(p, "cancelled")
            return self._link(p, started)
        except VerificationError as err:
            return _result(p, "failed", started, error=err, verify=err.verify)
        except PylinkjlError as err:
            return _result(p, "cancelled" if self.cancel.is_set() else "failed", started, error=err)
        except OSError as err:  # e.g. the output folder cannot be created
            return _result(p, "failed", started, error=InputError(err.filename or p.output, err.strerror or str(err)))
        except Exception as err:  # a bug: keep the other links going, but say so loudly
            log.exception("internal error linking %s", p.output)
            return _result(p, "failed", started, error=PylinkjlError(f"internal error: {err!r}"))
        finally:
            with self.lock:
                self.active -= 1

    def _link(self, p: _Planned, started: float) -> ItemResult:
        from pylinkjl.link.run import execute

        assert p.plan is not None
        link = execute(p.plan, force_response_file=self.force_response_file, verify=self.verify, ji=p.item.ji,
                       clean=False)  # before_running cleaned every output folder once
        return _result(p, "ok", started, link=link, verify=link.verify)


def _result(p: _Planned, status: str, started: float | None = None, **fields: Any) -> ItemResult:
    seconds = 0.0 if started is None else time.perf_counter() - started
    return ItemResult(p.item, status, p.output, p.target, seconds, **fields)


def relink_many(items: Iterable[BatchItem | PathLike | Sequence[PathLike]], *, jobs: int | None = None,
                target: Target | str | None = None, julia_version: str | None = None,
                out_dir: PathLike | None = None, verify: bool = False,
                on_result: Callable[[ItemResult], None] | None = None, on_planned: Callable[[int], None] | None = None,
                force_response_file: bool = False, **options: Unpack[SharedLinkOptions]) -> list[ItemResult]:
    """Link every item, ``jobs`` at a time (default: the CPU count), and return one result per item in
    the order given. ``items`` are BatchItems, input paths, or lists of input paths. ``options`` are
    :func:`pylinkjl.link.api.link_request` keywords shared by all items (``julia_home``, ``lld``, ``timeout``, ``stub_missing``, ...).

    ``on_planned(n)`` is called once with the number of items; ``on_result`` once per item as it
    finishes (or fails to plan), always from the calling thread. Raises TargetError for a bad
    ``jobs`` or ``target``, BatchInterrupted on Ctrl-C."""
    if isinstance(target, str):
        target = parse_target(target)
    if "threads" in options:
        raise TargetError("relink_many sets LLD's --threads itself (from jobs and the CPU count)")
    batch = [_as_item(e) for e in items]
    par = parallelism(jobs, len(batch))
    threads = par.threads
    folder = Path(out_dir) if out_dir is not None else None
    log.info("%d item(s), %d job(s), LLD --threads=%d (%d CPUs)", len(batch), par.jobs, threads, par.cpus)

    if on_planned is not None:
        on_planned(len(batch))
    results: list[ItemResult | None] = [None] * len(batch)

    def record(result: ItemResult, index: int) -> None:
        results[index] = result
        if result.status == "failed":
            log.info("%s: %s", result.output or result.item.inputs[0], result.error)
        if on_result is not None:
            on_result(result)

    def harvest(pending: set[cf.Future[ItemResult]], timeout: float) -> set[cf.Future[ItemResult]]:
        done, pending = cf.wait(pending, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            record(fut.result(), futures[fut].index)
        return pending

    # Each plan is handed to the pool as soon as it is made: planning (Python, in this thread) overlaps
    # with the links already running (LLD processes), instead of delaying the first link until all
    # items are planned.
    planned: list[_Planned] = []
    refused = before_running(batch, target, folder)
    worker = _Worker(verify, force_response_file)
    futures: dict[cf.Future[ItemResult], _Planned] = {}
    try:
        with cf.ThreadPoolExecutor(max_workers=par.jobs, thread_name_prefix="pylinkjl-relink") as pool:
            try:
                pending: set[cf.Future[ItemResult]] = set()
                for index, item in enumerate(batch):
                    p = _plan_item(index, item, target=target, julia_version=julia_version, out_dir=folder,
                                   threads=threads, options=dict(options), refused=refused.get(index))
                    planned.append(p)
                    if p.plan is None:
                        record(_result(p, "failed", error=p.error), index)
                    else:
                        fut = pool.submit(worker.run, p)
                        futures[fut] = p
                        pending.add(fut)
                    pending = harvest(pending, 0)
                while pending:
                    pending = harvest(pending, _POLL_SECONDS)
            except KeyboardInterrupt:
                _stop(worker, pool, futures)
                raise
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP/SIGQUIT (process.signals_as_interrupt)
        by_index = {p.index: fut for fut, p in futures.items()}
        final = [r if r is not None else
                 _finished_or_cancelled(planned[i], by_index.get(i)) if i < len(planned) else
                 ItemResult(batch[i], "cancelled", None, None)
                 for i, r in enumerate(results)]
        from pylinkjl.process import signal_number

        raise BatchInterrupted(final, signum=signal_number(err)) from None
    return [r for r in results if r is not None]


def _finished_or_cancelled(p: _Planned, fut: cf.Future[ItemResult] | None) -> ItemResult:
    if fut is not None and fut.done() and not fut.cancelled():
        return fut.result()
    return _result(p, "cancelled")


def _stop(worker: _Worker, pool: cf.ThreadPoolExecutor, futures: dict[cf.Future[ItemResult], _Planned]) -> None:
    """After Ctrl-C: cancel what has not started, then kill running LLDs until every worker is idle.
    Killing repeats because a worker may start a process just after a round of killing."""
    from pylinkjl.process import kill_running

    log.info("interrupted: stopping the running links")
    worker.cancel.set()
    pool.shutdown(wait=False, cancel_futures=True)
    while True:
        try:
            kill_running(worker.threads)
            with worker.lock:
                idle = worker.active == 0
            # done() rather than cf.wait(): wait() never counts futures cancelled by shutdown() as done
            if idle and all(fut.done() for fut in futures):
                return
            time.sleep(_POLL_SECONDS / 4)
        except KeyboardInterrupt:  # a second Ctrl-C: keep stopping; leave no linker behind
            continue
