"""The verify report: named checks that pass, fail or do not apply, each with its reason and numbers.

Every command that verifies (``verify``, ``link --verify``, ``relink --verify``) prints this one rendering and
serialises it with :meth:`Report.to_dict`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "not_applicable"]
MAX_EXAMPLES = 5  # problems quoted per failed check


@dataclass
class CheckResult:
    name: str
    status: Status
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class Report:
    path: Path
    checks: list[CheckResult] = field(default_factory=list)
    image: dict[str, Any] = field(default_factory=dict)  # summary of what was decoded

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    def __getitem__(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def add(self, check: CheckResult) -> None:
        self.checks.append(check)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "image": self.image,
                "checks": [asdict(c) for c in self.checks]}

    def render(self, *, verbose: bool = False) -> str:
        """The report as a person reads it (what every command prints): a line per check; a failed
        check, or every check with ``verbose``, shows its numbers."""
        img = self.image
        head = (f"{self.path}: {img.get('line_name', '?')} {img.get('kind_name', 'image')}, {img.get('format', '?')} {img.get('arch', '?')}"
                f", {len(img.get('targets') or [])} target(s), {img.get('nshards', 0)} shard(s), "
                f"{img.get('nfuncs', 0)} functions")
        lines = [head]
        for c in self.checks:
            lines.append(f"  {_MARK[c.status]} {c.name}: {c.reason}")
            if c.numbers and (verbose or c.failed):
                lines.append(f"       {json.dumps(c.numbers, default=str)[:2000]}")
        failed = self.failed
        lines.append("verification passed" if not failed else f"verification FAILED: {len(failed)} check(s) "
                     f"failed ({', '.join(c.name for c in failed)})")
        return "\n".join(lines)


_MARK = {"passed": "ok  ", "failed": "FAIL", "not_applicable": "n/a "}


def passed(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "passed", reason, numbers)


def failed(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "failed", reason, numbers)


def not_applicable(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "not_applicable", reason, numbers)


def join_problems(problems: list[str]) -> str:
    head = "; ".join(problems[:3])
    return head + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
