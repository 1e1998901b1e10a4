"""What a batch relink is made of: items, their results, and the exit code of a whole batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pylinkjl.errors import Interrupted, PylinkjlError
from pylinkjl.target import Target

if TYPE_CHECKING:
    from pylinkjl.link.run import LinkResult

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class BatchItem:
    """One link: its inputs and, optionally, its own output, target and Julia version."""

    inputs: tuple[Path, ...]
    output: Path | None = None  # None: out_dir / (stem of the first input + the target's extension)
    target: Target | str | None = None  # None: the batch's target
    julia_version: str | None = None  # None: the batch's Julia version
    ji: Path | None = None  # a .ji to reseal for the new image


@dataclass(frozen=True)
class ItemResult:
    item: BatchItem
    status: str  # "ok", "failed" or "cancelled"
    output: Path | None
    target: Target | None
    seconds: float = 0.0  # wall time of this item's link (and verification)
    link: LinkResult | None = None  # when LLD succeeded
    error: PylinkjlError | None = None
    verify: Any = None  # pylinkjl.images.report's Report with --verify

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inputs": [str(p) for p in self.item.inputs], "output": str(self.output) if self.output else None,
            "target": self.target.name if self.target else None, "status": self.status, "ok": self.ok,
            "seconds": round(self.seconds, 4),
        }
        if self.link is not None:
            data.update(size=self.link.size, lld_seconds=round(self.link.seconds, 4))
        if self.error is not None:
            data["error"] = self.error.to_dict()
        if self.verify is not None:
            data["verify"] = self.verify.to_dict()
        if self.link is not None and self.link.reseal is not None:
            data["reseal"] = self.link.reseal.to_dict()
        return data


class BatchInterrupted(Interrupted):
    """Ctrl-C during :func:`relink_many`; ``results`` holds what finished and what was cancelled."""

    def __init__(self, results: list[ItemResult], *, signum: int = 2) -> None:
        done = sum(r.ok for r in results)
        super().__init__(f"interrupted: {done} of {len(results)} links had finished; the running linkers were "
                         "stopped and left no output", signum=signum)
        self.results = results


def exit_code(results: Sequence[ItemResult]) -> int:
    """0 if every item succeeded; the failures' exit code if they share one; else 1."""
    codes = {r.error.exit_code if r.error else 1 for r in results if not r.ok}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else 1
