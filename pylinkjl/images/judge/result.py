"""What the real runtime said, read from the loader's output: the stages of
``jl_restore_package_image_from_file`` it passed and the one where it stopped, in the runtime's own words.

The runtime checks a package image in this order (1.13; each failure has its own message, listed in
docs/real-runtime-judge.md): it opens the image (``jl_dlopen``), checks that the image resolved
``jl_RTLD_DEFAULT_handle`` to this runtime, looks up the loader symbols (``jl_image_unpack``,
``jl_image_pointers``, ``jl_system_image_data``/``_size``) and calls ``jl_image_unpack`` (for an uncompressed
image ``jl_image_unpack_uncomp`` of libjulia-internal: seen with gdb), selects a CPU target, walks the shards' clone
tables, and only then reads the serialized heap (header verification first). So the message it stops with
tells which checks passed before it.
"""

from __future__ import annotations

import json
import re
import signal
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pylinkjl.images.verify import CheckResult

StageStatus = Literal["passed", "failed", "not_reached", "unknown"]

# (name, what the runtime checks there)
STAGES: tuple[tuple[str, str], ...] = (
    ("boot", "the runtime boots with the system image (jl_init_with_image_file)"),
    ("dlopen", "the runtime opens the image (jl_dlopen)"),
    ("rtld", "RTLD consistency: the image's get_jl_RTLD_DEFAULT_handle_addr() is this runtime's handle"),
    ("unpack", "the image is unpacked (jl_image_unpack, jl_image_pointers, jl_system_image_data/size)"),
    ("cpu-target", "a CPU target of the image is selected for this CPU"),
    ("shards", "the image header and every shard's clone tables are walked and relocated"),
    ("heap", "the serialized heap is accepted (header verification, then the restore)"),
)
NATIVE_STAGES = tuple(name for name, _ in STAGES if name not in ("boot", "heap"))

# The runtime's own messages, and the stage each one stops at.
_STOPS: tuple[tuple[str, str], ...] = (
    ("Error opening package file", "dlopen"),
    ("failed consistency check", "rtld"),
    ("could not load symbol", "unpack"),
    ("Unable to find compatible target", "cpu-target"),
    ("Image file is not compatible with this version of Julia", "shards"),
    ("Precompile file header verification checks failed", "heap"),
)
_LINE = re.compile(r'^@@judge (\S+) (".*")\s*$')
_TARGET_LINE = re.compile(r"^Target (\d+) \((.*?)\): (.*)$")
_FATAL = "fatal: error thrown and no exception handler available."
_SHOWN = re.compile(r'^(\w+)\("((?:[^"\\]|\\.)*)"')


@dataclass
class Stage:
    name: str
    status: StageStatus
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeResult:
    image: str
    runtime: dict[str, Any]  # the tree (RuntimeTree.to_dict)
    sysimage: str | None
    platform: str  # the runtime's platform (linux-x86_64, ...)
    runner: str  # native | qemu-aarch64 | wine64 | none
    applicable: bool = True
    reason: str = ""  # why not applicable
    outcome: str = ""  # accepted | refused | thrown | crashed | boot-failed | timed-out | not-applicable
    stopped_at: str | None = None  # a stage name; None when accepted or not applicable
    message: str | None = None  # the runtime's own words
    julia_version: str | None = None  # what the runtime says it is
    host_cpu: str | None = None  # the runtime's name for this CPU (jl_get_cpu_name)
    host_features: list[str] = field(default_factory=list)  # jl_dump_host_cpu
    cpu_target: str | None = None  # the session's -C, when given
    clones: dict[str, Any] = field(default_factory=dict)  # jl_check_pkgimage_clones: Base's CPU check
    targets: list[dict[str, Any]] = field(default_factory=list)  # "Target i (name): reason" lines
    stages: list[Stage] = field(default_factory=list)
    exit_code: int | None = None
    signal: str | None = None
    seconds: float = 0.0
    argv: list[str] = field(default_factory=list)
    loader: str | None = None
    output: str = ""  # the child's output (tail), runtime lines and the loader's
    fault_frames: list[str] = field(default_factory=list)  # exported symbols on the stack of a fault
    # what the judge gave the runtime for a stock image: links named as the image asks, a copy of the image
    # stamped with a privatised tree's symbol version (run._shim, stamp.stamp)
    adapted: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    @property
    def native_ok(self) -> bool:
        """Every check of the image's native part passed (the runtime stopped, if at all, at the heap)."""
        return all(s.status == "passed" for s in self.stages if s.name in NATIVE_STAGES) and bool(self.stages)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(accepted=self.accepted, native_ok=self.native_ok)
        return out

    def checks(self) -> list[CheckResult]:
        """The stages as verify checks ``runtime-<stage>`` (not reached: not applicable)."""
        from pylinkjl.images.verify import CheckResult

        if not self.applicable:
            return [CheckResult("runtime", "not_applicable", self.reason, {"platform": self.platform})]
        nums = {"runner": self.runner, "julia_version": self.julia_version, "outcome": self.outcome}
        out = []
        for s in self.stages:
            status = {"passed": "passed", "failed": "failed"}.get(s.status, "not_applicable")
            extra = dict(nums, **({"targets": self.targets, "clones": self.clones} if s.name == "cpu-target" else {}))
            out.append(CheckResult(f"runtime-{s.name}", status, s.detail, extra))  # type: ignore[arg-type]
        return out

    def render(self) -> str:
        if not self.applicable:
            return f"runtime judge: not applicable: {self.reason}"
        head = (f"runtime judge: Julia {self.julia_version or '?'} ({self.platform}, {self.runner}) "
                f"on {self.host_cpu or '?'}: {self.outcome}")
        lines = [head]
        lines += [f"  {_MARK[s.status]} {s.name}: {s.detail}" for s in self.stages]
        if self.adapted:
            lines.append("  adapted for the tree: " + "; ".join(self.adapted))
        if self.message and not self.accepted:
            lines.append("  the runtime said: " + self.message.strip().replace("\n", "\n    "))
        return "\n".join(lines)


_MARK = {"passed": "ok  ", "failed": "FAIL", "not_reached": "--  ", "unknown": "?   "}


def _julia_unescape(text: str) -> str:
    """A Julia string literal body as jl_static_show writes it (\\n, \\", \\\\, \\$, \\xHH, \\u)."""
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$", "e": "\x1b", "0": "\0"}

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body[0] in simple and len(body) == 1:
            return simple[body[0]]
        try:
            return chr(int(body[1:], 16))
        except ValueError:
            return m.group(0)

    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{1,4}|.)", one, text)


# An exported function of libjulia-internal on the stack of a fault, and the stage it belongs to (only
# exported names are known to dladdr: a frame in a static function shows as the exported one before it, so
# only functions that are themselves exported and belong to one stage are used).
_FAULT_STAGES = (("ijl_read_verify_header", "heap"), ("jl_restore_incremental_from_buf", "heap"))
_FAULT_WHAT = {"heap": "its check of the heap header (ijl_read_verify_header)"}
_FRAME = re.compile(r"\((?P<sym>[A-Za-z_][\w.]*)\+0x[0-9a-f]+\)")


def _frames(output: str) -> list[str]:
    """The symbol of each frame the loader's fault handler printed (backtrace_symbols_fd), innermost first."""
    if '@@judge backtrace "begin"' not in output:
        return []
    block = output.split('@@judge backtrace "begin"', 1)[1].split('@@judge backtrace "end"', 1)[0]
    frames = [m.group("sym") for m in _FRAME.finditer(block)]
    return [f for f in frames if f not in ("on_fault", "backtrace")]


def _stop_of(message: str) -> str | None:
    for needle, stage in _STOPS:
        if needle in message:
            return stage
    return None


def _signal_name(returncode: int) -> str | None:
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def parse_output(result: JudgeResult, output: str, returncode: int, timed_out: bool) -> JudgeResult:
    """Fill ``result`` from what the loader and the runtime printed."""
    keys: list[tuple[str, str]] = []
    plain: list[str] = []
    for raw in output.splitlines():
        m = _LINE.match(raw)
        if m:
            try:
                keys.append((m.group(1), json.loads(m.group(2))))
            except ValueError:
                plain.append(raw)
        else:
            plain.append(raw)
    seen = dict(keys)
    stages_seen = [v for k, v in keys if k == "stage"]
    result.julia_version = seen.get("version")
    result.host_cpu = seen.get("host-cpu")
    result.exit_code = returncode
    result.signal = _signal_name(returncode)
    result.output = output[-6000:]
    for line in plain:
        if line.startswith("Features: ") and not result.host_features:
            result.host_features = [f.strip() for f in line[len("Features: "):].split(",") if f.strip()]
    # the value the restore gave back, or threw; else the runtime's report of an error nobody caught
    kind = "returned" if "returned" in seen else "thrown" if "thrown" in seen else None
    message = seen.get(f"{kind}-message") if kind else None
    if kind and message is None and re.search(r"(Exception|Error)$", seen.get(kind, "")):
        message = seen[kind]  # an exception without a message field: its type is all it says
    if "clones" in seen:
        result.clones = {"verdict": seen["clones"], "message": seen.get("clones-reason-message"),
                         "function": "jl_check_pkgimage_clones"}
    fatal = _FATAL in output
    if fatal and kind is None:
        after = output.split(_FATAL, 1)[1].strip().splitlines()
        shown = _SHOWN.match(after[0]) if after else None
        kind, message = "thrown", (_julia_unescape(shown.group(2)) if shown else (after[0] if after else ""))
    boot_errors = [line[len("ERROR: "):] for line in plain if line.startswith("ERROR: ")]
    for text in (message or "", result.clones.get("message") or ""):
        for line in text.splitlines():
            t = _TARGET_LINE.match(line.strip())
            if t and not any(x["index"] == int(t.group(1)) for x in result.targets):
                result.targets.append({"index": int(t.group(1)), "name": t.group(2), "reason": t.group(3).strip()})

    # -- where it stopped ---------------------------------------------------------------------------
    order = [name for name, _ in STAGES]
    status: dict[str, StageStatus] = {name: "not_reached" for name in order}
    detail = dict(STAGES)
    if timed_out:
        result.outcome = "timed-out"
        result.message = "the runtime did not finish in time"
    if "initialized" not in seen:
        status["boot"] = "failed"
        result.stopped_at = "boot"
        result.outcome = result.outcome or "boot-failed"
        why = seen.get("libjulia-error") or seen.get("missing-function") or "; ".join(boot_errors) or (
            f"the child died of {result.signal}" if result.signal else f"the child exited with {returncode}")
        if "libjulia-error" in seen:
            why = f"libjulia could not be loaded: {why}"
        elif "missing-function" in seen:
            why = f"libjulia does not export {why}"
        result.message = result.message or why
        detail["boot"] = f"{detail['boot']}: {why}"
    else:
        status["boot"] = "passed"
        stop = _stop_of(message) if message else None
        if kind == "returned" and message is None:
            result.outcome = "accepted"
            for name in order:
                status[name] = "passed"
        elif message is not None:
            result.outcome = "refused" if kind == "returned" else "thrown"
            result.message = message
            result.stopped_at = stop or "unknown"
            if stop is not None:
                for name in order[1:order.index(stop)]:
                    status[name] = "passed"
                status[stop] = "failed"
                detail[stop] = f"{detail[stop]}: {message.strip().splitlines()[0]}"
            else:
                for name in order[1:]:
                    status[name] = "unknown"
        else:  # died inside the restore: an error without a handler, or a signal
            result.outcome = result.outcome or "crashed"
            where = stages_seen[-1] if stages_seen else "start"
            how = f"died of {seen.get('fault') or result.signal}" if (seen.get("fault") or result.signal) else \
                f"exited with code {returncode}"
            result.message = result.message or f"the runtime {how} during the {where} step" + (
                f" ({'; '.join(boot_errors)})" if boot_errors else "")
            frames = _frames(output)
            result.fault_frames = frames
            stop = next((stage for sym, stage in _FAULT_STAGES if sym in frames), None) if where == "restore" else None
            result.stopped_at = stop or "unknown"
            if frames:
                result.message += " in " + " <- ".join(frames[:8])
            for name in order[1:]:
                status[name] = "unknown"
            if stop is not None:
                for name in order[1:order.index(stop)]:
                    status[name] = "passed"
                status[stop] = "failed"
                detail[stop] = f"{detail[stop]}: the runtime {how} in {_FAULT_WHAT[stop]}"
    # Base's own CPU check (jl_check_pkgimage_clones) speaks for the cpu-target stage when the restore
    # stopped before it, or died
    if result.clones and status["cpu-target"] in ("not_reached", "unknown"):
        ok = result.clones["verdict"] == "accepted"
        status["cpu-target"] = "passed" if ok else "failed"
    if result.clones:
        verdict = ("a target was selected" if result.clones["verdict"] == "accepted" else
                   (result.clones.get("message") or "rejected").strip().splitlines()[0])
        detail["cpu-target"] = f"{detail['cpu-target']} (jl_check_pkgimage_clones: {verdict})" if \
            status["cpu-target"] != "failed" or result.stopped_at != "cpu-target" else detail["cpu-target"]
    if result.targets:
        detail["cpu-target"] += "; " + "; ".join(f"Target {t['index']} ({t['name']}): {t['reason']}"
                                                 for t in result.targets)
    if status["boot"] == "passed":
        detail["boot"] += (f": Julia {result.julia_version or '?'} ({result.platform}, {result.runner}) on "
                           f"{result.host_cpu or '?'}" + (f", -C {result.cpu_target}" if result.cpu_target else ""))
    result.stages = [Stage(name, status[name], detail[name]) for name in order]
    return result
