"""Batch manifests for build tools, read by :func:`read_manifest`:

- JSON (the file starts with ``[``): a list of objects ``{"input": PATH or [PATH, ...], "output": PATH,
  "target": T, "julia_version": V, "ji": PATH}``; only ``input`` is required.
- TSV: one item a line, ``input<TAB>output[<TAB>target[<TAB>julia_version[<TAB>ji]]]``; empty fields and
  missing columns mean "the default"; blank lines and lines starting with ``#`` are skipped.

``ji`` names the item's ``.ji`` cache: it is resealed for the new image (``pylinkjl link --ji``).

Relative paths in a manifest are relative to the manifest's folder. An item without an output goes
to ``out_dir`` (default: beside its first input) as the input's stem plus the target's extension.
"""

from __future__ import annotations

import json
from pathlib import Path

from pylinkjl.batch.items import BatchItem, PathLike
from pylinkjl.errors import InputError

MAX_MANIFEST_BYTES = 64 << 20  # a manifest of a million items is far below this


def read_manifest(path: PathLike) -> list[BatchItem]:
    """Items from a JSON or TSV manifest (see the module docstring). Raises InputError naming the file
    and the offset of the problem."""
    path = Path(path)
    from pylinkjl.binfmt.files import read_file

    data = read_file(path, "the manifest", limit=MAX_MANIFEST_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(path, "manifest is not UTF-8 text", offset=err.start) from None
    base = path.parent
    if text.lstrip()[:1] in ("[", "{"):
        return _parse_json_manifest(text, path, base)
    return _parse_tsv_manifest(text, path, base)


def _byte_offset(text: str, char_index: int) -> int:
    return len(text[:char_index].encode("utf-8"))


def _names_a_folder(output: str) -> bool:
    """An output spelled ``out/``: Path would drop the slash and link a file called ``out`` (see
    link.plan.check_output_spelling, the same rule for -o)."""
    from pylinkjl.errors import TargetError
    from pylinkjl.link.plan import check_output_spelling

    try:
        check_output_spelling(output)
    except TargetError:
        return True
    return False


def _manifest_path(value: str, base: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _parse_json_manifest(text: str, path: Path, base: Path) -> list[BatchItem]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(path, f"manifest is not valid JSON: {err.msg}", offset=_byte_offset(text, err.pos)) from None
    except RecursionError:
        raise InputError(path, "manifest JSON is nested too deeply", offset=0) from None
    if not isinstance(doc, list):
        raise InputError(path, "a JSON manifest is a list of {\"input\": ..., \"output\": ...} objects", offset=0)
    items: list[BatchItem] = []
    for i, entry in enumerate(doc):
        try:
            items.append(_json_item(entry, base))
        except _BadEntry as err:
            raise InputError(path, f"manifest entry {i}: {err}", offset=_entry_offset(text, i)) from None
    return items


class _BadEntry(Exception):
    pass


def _json_item(entry: object, base: Path) -> BatchItem:
    """One JSON manifest entry; _BadEntry says what is wrong with it."""
    if not isinstance(entry, dict):
        raise _BadEntry("is not an object")
    unknown = set(entry) - {"input", "output", "target", "julia_version", "ji"}
    if unknown:
        raise _BadEntry(f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
    raw_inputs = entry.get("input")
    if isinstance(raw_inputs, str):
        raw_inputs = [raw_inputs]
    if not isinstance(raw_inputs, list) or not raw_inputs or not all(isinstance(x, str) and x for x in raw_inputs):
        raise _BadEntry('"input" must be a path or a non-empty list of paths')
    for key in ("output", "target", "julia_version", "ji"):
        if entry.get(key) is not None and (not isinstance(entry[key], str) or not entry[key]):
            raise _BadEntry(f'"{key}" must be a non-empty string')
    if any("\0" in x for x in [*raw_inputs, entry.get("output") or "", entry.get("ji") or ""]):
        raise _BadEntry("NUL character in a path")
    output, ji = entry.get("output"), entry.get("ji")
    if output and _names_a_folder(output):
        raise _BadEntry(f'"output" {output!r} ends with a path separator: give the file name of the image')
    return BatchItem(inputs=tuple(_manifest_path(x, base) for x in raw_inputs),
                     output=_manifest_path(output, base) if output else None,
                     target=entry.get("target"), julia_version=entry.get("julia_version"),
                     ji=_manifest_path(ji, base) if ji else None)


def _entry_offset(text: str, index: int) -> int | None:
    """Best-effort byte offset of the index-th element of a top-level JSON list (for messages)."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    try:
        for i in range(index + 1):
            while text[pos] in " \t\r\n,":
                pos += 1
            if i == index:
                return _byte_offset(text, pos)
            _, pos = decoder.raw_decode(text, pos)
    except (ValueError, IndexError, RecursionError):
        pass
    return None


def _parse_tsv_manifest(text: str, path: Path, base: Path) -> list[BatchItem]:
    items: list[BatchItem] = []
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        start = offset
        offset += len(line.encode("utf-8"))
        line = line.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) > 5:
            raise InputError(path, f"line {number}: {len(fields)} tab-separated fields; expected "
                             "input, output, target, julia_version, ji (at most 5)", offset=start)
        fields += [""] * (5 - len(fields))
        raw_input, output, target, version, ji = (f.strip() for f in fields)
        if not raw_input:
            raise InputError(path, f"line {number}: no input path", offset=start)
        if "\0" in line:
            raise InputError(path, f"line {number}: NUL character in a path", offset=start)
        if output and _names_a_folder(output):
            raise InputError(path, f"line {number}: the output {output!r} ends with a path separator: give the "
                             "file name of the image", offset=start)
        items.append(BatchItem(inputs=(_manifest_path(raw_input, base),),
                               output=_manifest_path(output, base) if output else None,
                               target=target or None, julia_version=version or None,
                               ji=_manifest_path(ji, base) if ji else None))
    return items
