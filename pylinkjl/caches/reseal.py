"""Re-seal a ``.ji`` after its image changed (relink, strip, codesign): rewrite the trailer.

Julia refuses a cache whose image no longer has the CRC-32C recorded in the ``.ji`` trailer
(``uint32 crc_so; uint32 crc32c(.ji without its last 4 bytes)``, docs/julia-linking.md §4.6). Before
writing, we make sure the two files belong together: the heap checksum Julia embeds in the image
equals the ``.ji``'s (same package, same build), and the image's target list equals the ``.ji``'s
clone targets; and the image must be a complete shared library of the ``.ji``'s format and architecture
(a ``.ji`` given as the image, or an image cut short, is refused). Decide first (:func:`plan_reseal`), then
apply: the new file is written beside the old one (:func:`stage_reseal`), fsynced and renamed over it
(:func:`commit_reseal`); ``pylinkjl link --ji`` stages it before the new image lands and renames it after.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crc32c

from pylinkjl.binfmt.extent import image_problem
from pylinkjl.binfmt.files import mapped_view
from pylinkjl.caches.crc import crc32c_file
from pylinkjl.caches.ji import JiFile, read_ji
from pylinkjl.errors import InputError, filesystem_error
from pylinkjl.fs.leftovers import RESEAL_SUFFIX, clean_stale, lock

log = logging.getLogger("pylinkjl.caches.reseal")


@dataclass
class ResealResult:
    ji_path: Path
    image_path: Path
    old_crc_so: int
    new_crc_so: int
    old_crc_ji: int
    new_crc_ji: int
    dry_run: bool
    written: bool
    pair: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return (self.old_crc_so, self.old_crc_ji) != (self.new_crc_so, self.new_crc_ji)

    def to_dict(self) -> dict[str, Any]:
        return {"ji": str(self.ji_path), "image": str(self.image_path), "changed": self.changed,
                "dry_run": self.dry_run, "written": self.written,
                "crc_so": {"old": f"{self.old_crc_so:#010x}", "new": f"{self.new_crc_so:#010x}"},
                "crc_ji": {"old": f"{self.old_crc_ji:#010x}", "new": f"{self.new_crc_ji:#010x}"},
                "pair": self.pair, "notes": self.notes}


@dataclass(frozen=True)
class ResealPlan:
    """What a reseal will write: decided, nothing written yet."""

    ji: JiFile
    image: Path
    result: ResealResult
    trailer: bytes  # the new last 8 bytes of the .ji


def plan_reseal(ji_path: str | os.PathLike[str], image_path: str | os.PathLike[str] | None = None, *,
                force: bool = False, dry_run: bool = False, lands_at: Path | None = None) -> ResealPlan:
    """Check that the image is a complete image for the ``.ji``'s platform and that the two belong
    together, and compute the new trailer. Writes nothing. Raises InputError (``force`` skips the
    pairing check, never the format checks). ``lands_at``: where a staged image will be renamed to
    (the result names that path)."""
    from pylinkjl.caches.inspection import pair_check  # the report module; cheap, no LIEF at import

    ji = read_ji(ji_path)
    if not ji.is_pkgimage:
        raise InputError(ji.path, "this cache has no native code (built with --pkgimages=no): there is no image "
                         "checksum to reseal")
    image = Path(image_path) if image_path is not None else ji.image_path
    if not image.is_file():
        raise InputError(image, "image not found", hint=f"pass the image of {ji.path.name} explicitly")
    problem = image_problem(image, ji.image_format, ji.image_arch)
    if problem is not None:
        raise InputError(image, f"{problem}; {ji.path.name} is a {ji.os} {ji.arch} cache, so its image must be "
                         f"a complete .{ji.dlext} for {ji.image_arch}", hint="reseal only a complete, linked image")
    pair = pair_check(ji, image)
    notes: list[str] = []
    problems = _pairing_problems(ji, image, pair)
    if problems and not force:
        # a staged image is removed with its staging folder: name the output it would have become
        shown, what = (lands_at, "the new image ") if lands_at is not None else (image, "")
        raise InputError(shown, f"{what}does not belong to {ji.path.name}: " + "; ".join(problems),
                         hint="reseal only the image that was relinked from this cache's objects (--force skips this check)")
    notes += [f"ignored (--force): {p}" for p in problems]
    if ji.crc_ji_ok is False:
        msg = (f"the .ji's own checksum is already wrong (trailer {ji.crc_ji:#010x}, actual "
               f"{ji.crc_ji_actual:#010x}): it was changed after Julia wrote it")
        if not force:
            raise InputError(ji.path, msg, hint="--force reseals it anyway")
        notes.append(f"ignored (--force): {msg}")
    new_so = crc32c_file(image)
    endian = ">" if ji.byte_order == "big" else "<"
    with mapped_view(ji.path) as data:
        body_crc = crc32c.crc32c(data[:ji.size - 8])
    so_bytes = struct.pack(endian + "I", new_so)
    new_ji = crc32c.crc32c(so_bytes, body_crc)
    if lands_at is not None:
        pair["image"] = str(lands_at)
    result = ResealResult(ji.path, lands_at or image, ji.crc_so, new_so, ji.crc_ji, new_ji, dry_run, False, pair, notes)
    return ResealPlan(ji, image, result, so_bytes + struct.pack(endian + "I", new_ji))


@dataclass
class StagedJi:
    """The resealed ``.ji``, written beside the original and locked (so that a clean-up of stale leftovers
    never takes it while this process lives) until it is renamed or discarded."""

    path: Path
    fd: int | None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()


def stage_reseal(plan: ResealPlan) -> StagedJi | None:
    """Write the resealed ``.ji`` to a temporary file beside it (``.NAME.ji.XXXX.reseal``), fsynced, with
    the mode of the original; None when nothing changes. :func:`commit_reseal` renames it into place."""
    if not plan.result.changed:
        return None
    return _write_resealed(plan.ji, plan.trailer)


def commit_reseal(plan: ResealPlan, staged: StagedJi | None) -> ResealResult:
    """Rename the staged ``.ji`` over the original (atomic on POSIX and Windows)."""
    if staged is not None:
        try:
            os.replace(staged.path, plan.ji.path)
        except OSError as err:  # an immutable or busy .ji, ...
            staged.discard()
            raise filesystem_error(err, "replace the .ji with the resealed one", plan.ji.path) from None
        except BaseException:
            staged.discard()
            raise
        staged.close()
        _fsync_dir(plan.ji.path.parent)
        plan.result.written = True
        log.info("resealed %s: crc_so %#010x -> %#010x", plan.ji.path, plan.result.old_crc_so, plan.result.new_crc_so)
    return plan.result


def reseal(ji_path: str | os.PathLike[str], image_path: str | os.PathLike[str] | None = None, *,
           dry_run: bool = False, force: bool = False) -> ResealResult:
    """Recompute ``crc_so`` and the ``.ji``'s own CRC. ``image_path`` defaults to the sibling Julia
    would load (extension from the ``.ji``'s OS field). Raises InputError when the image is not a complete
    image for the ``.ji``'s platform, or when the files do not belong together (``force`` skips that
    check, never the format checks)."""
    plan = plan_reseal(ji_path, image_path, force=force, dry_run=dry_run)
    if not dry_run:
        clean_stale(plan.ji.path.parent)  # temporaries of a reseal that was killed
    if dry_run:
        return plan.result
    return commit_reseal(plan, stage_reseal(plan))


def _pairing_problems(ji: JiFile, image: Path, pair: dict[str, Any]) -> list[str]:
    problems = []
    if pair.get("same_build") is False:
        problems.append(f"the image carries heap checksum {pair.get('image_heap_checksum')}, the .ji "
                        f"{ji.heap_checksum:#018x} (another package or another build)")
    elif pair.get("same_build") is None:
        problems.append("no Julia cache header found inside the image, so the package cannot be confirmed")
    if pair.get("targets_equal") is False:
        problems.append("the image's CPU target list differs from the .ji's clone targets")
    elif pair.get("targets_equal") is None:
        problems.append("the image's CPU target list could not be read")
    return problems


def _write_resealed(ji: JiFile, trailer: bytes) -> StagedJi:
    """Copy the ``.ji`` without its 8-byte trailer plus the new trailer to a temporary file beside
    it, fsync, and keep the mode; the file stays locked (pylinkjl.fs.leftovers) until it is renamed."""
    target = ji.path
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=RESEAL_SUFFIX, dir=target.parent)
    except OSError as err:
        raise filesystem_error(err, "write the resealed .ji beside it", target) from None
    staged = StagedJi(Path(tmp_name), fd)
    try:
        lock(fd)
        # write through a duplicate: closing it keeps the lock, which ``fd`` holds until the rename
        with os.fdopen(os.dup(fd), "wb") as out, open(target, "rb") as src:
            remaining = ji.size - 8
            while remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    raise InputError(target, "file shrank while it was being resealed")
                out.write(chunk)
                remaining -= len(chunk)
            out.write(trailer)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staged.path, target.stat().st_mode & 0o7777)
    except OSError as err:
        staged.discard()
        raise filesystem_error(err, "write the resealed .ji", target) from None
    except BaseException:
        staged.discard()
        raise
    return staged


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
