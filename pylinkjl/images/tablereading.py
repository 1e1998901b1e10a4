"""Reading an image's tables through its relocations, bounded: words, pointers and counts that stop at the
first implausible value (:class:`Corrupt`, which names the check it belongs to), and the clone-index walk, the
same scheme in every layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pylinkjl.errors import InputError
from pylinkjl.images.imageinfo import CloneRecord, ShardInfo
from pylinkjl.images.layout import TAG, VAL

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

MAX_FUNCS = 1 << 26  # a count above this is corruption, not a package


class Corrupt(Exception):
    """A table could not be read any further; carries the check it belongs to."""

    def __init__(self, check: str, text: str) -> None:
        super().__init__(text)
        self.check = check
        self.text = text


# =================================================================================================
# small readers
# =================================================================================================

def words(view: BinaryView, addr: int, n: int, check: str, what: str, signed: bool = False) -> list[int]:
    if n < 0 or n > MAX_FUNCS * 4:
        raise Corrupt(check, f"{what}: implausible length {n}")
    if n == 0:
        return []
    try:
        raw = view.read_bytes(addr, 4 * n)
    except InputError as err:
        raise Corrupt(check, f"{what} ({n} words at {addr:#x}) cannot be read: {err.problem}") from None
    return memoryview(raw).cast("i" if signed else "I").tolist()


def pointers(view: BinaryView, addr: int, n: int, check: str, what: str) -> list[int | None]:
    if n < 0 or n > MAX_FUNCS:
        raise Corrupt(check, f"{what}: implausible length {n}")
    try:
        return view.read_pointers(addr, n)
    except InputError as err:
        raise Corrupt(check, f"{what} ({n} pointers at {addr:#x}) cannot be read: {err.problem}") from None


def count(n: int, check: str, what: str, limit: int = MAX_FUNCS) -> int:
    if n < 0 or n > limit:
        raise Corrupt(check, f"{what} is {n}, which is implausible")
    return n


def ptr(view: BinaryView, p: int | None, check: str, what: str) -> int:
    if p is None or p == 0:
        raise Corrupt(check, f"{what} is {'null' if p == 0 else 'not a pointer into the image'}")
    return p


def table_extent(view: BinaryView, addr: int, name: str | None) -> tuple[int | None, bool]:
    """(bytes available at addr, exact?) from the symbol's size (ELF) or the next symbol."""
    size_of = getattr(view, "symbol_size", None)
    if name and size_of is not None:
        size = size_of(name)
        if size:
            return size, True
    return view.symbol_extent(addr), False


# =================================================================================================
# the clone-index walk (same scheme in every line)
# =================================================================================================

def walk_clone_idxs(view: BinaryView, shard: ShardInfo, idxs_addr: int, ntargets: int,
                    idxs_name: str | None) -> None:
    """Decode ``ntargets`` tagged records of a clone-index table into ``shard.records``."""
    check = "target-count"
    nfunc = shard.nfuncs
    pos = idxs_addr
    records: list[CloneRecord] = []
    for t in range(ntargets):
        (tag_len,) = words(view, pos, 1, check, f"shard {shard.index} clone index record of target {t}")
        pos += 4
        clone_all = bool(tag_len & TAG)
        ln = tag_len & VAL
        base = None
        if t == 0 and not clone_all:
            raise Corrupt(check, f"shard {shard.index}: target 0's clone record is not tagged clone_all "
                                  f"(word {tag_len:#x})")
        if not clone_all:
            (base,) = words(view, pos, 1, check, f"shard {shard.index} base of target {t}")
            pos += 4
            if base >= t or not records[base].clone_all:
                raise Corrupt(check, f"shard {shard.index}: target {t} names base({base}), which is not an "
                                      f"earlier clone_all target (the walk is off: wrong target count?)")
        if ln > nfunc:
            raise Corrupt(check, f"shard {shard.index}: target {t} lists {ln} functions but the shard has "
                                  f"{nfunc} (the walk is off: wrong target count?)")
        idxs = words(view, pos, ln, check, f"shard {shard.index} indices of target {t}")
        pos += 4 * ln
        bad = [i for i in idxs if i & VAL >= nfunc]
        if bad:
            raise Corrupt(check, f"shard {shard.index}: target {t} names function {bad[0] & VAL} of {nfunc} "
                                  f"(the walk is off: wrong target count?)")
        if clone_all:
            count, nreloc, nptrs = nfunc, ln, (0 if t == 0 else nfunc)
        else:
            count, nreloc, nptrs = ln, sum(1 for i in idxs if i & TAG), ln
        records.append(CloneRecord(t, clone_all, base, count, nreloc, nptrs))
    shard.records = records
    shard.idxs_words = (pos - idxs_addr) // 4
    extent, exact = table_extent(view, idxs_addr, idxs_name)
    shard.idxs_extent, shard.idxs_extent_exact = extent, exact
    if extent is not None and extent > pos - idxs_addr:
        spare = min((extent - (pos - idxs_addr)) // 4, 64)
        try:
            shard.trailing_words = words(view, pos, spare, check, "trailing words")
        except Corrupt:
            shard.trailing_words = []


def clone_slices(shard: ShardInfo) -> list[tuple[int, int]]:
    """(start, count) of each target's entries in the shard's clone pointer table."""
    out, start = [], 0
    for r in shard.records:
        out.append((start, r.nptrs))
        start += r.nptrs
    return out
