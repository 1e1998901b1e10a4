"""binfmt/extent.py: the bytes an image's headers claim, against real images (every real Julia image in
shared/fixtures/real, and LLD's outputs for all seven targets): a complete image claims exactly its size
(ELF, Mach-O) or up to the file-alignment padding (PE); any cut is reported; malformed headers raise
InputError naming the file, never anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.extent import claimed_size, image_problem, truncation
from pylinkjl.errors import InputError
from pylinkjl.link.api import link_image
from pylinkjl.target import ALL_TARGETS, Target

from . import realdata

REAL = realdata.require_real()
REAL_IMAGES = sorted([*REAL.rglob("*.so"), *REAL.rglob("*.dylib")])
SAMPLES = Path(__file__).parents[1] / "pylinkjl" / "samples"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> dict[Target, bytes]:
    folder = tmp_path_factory.mktemp("extent")
    out = {}
    for t in ALL_TARGETS:
        image = folder / f"x-{t.name}.{t.dlext}"
        link_image(SAMPLES / f"pkgimage-1.11-{t.os}-{t.arch}.a", image, target=t)
        out[t] = image.read_bytes()
    return out


def test_real_images_claim_exactly_their_size() -> None:
    assert len(REAL_IMAGES) >= 30
    for image in REAL_IMAGES:
        data = image.read_bytes()
        fmt = "elf" if image.suffix == ".so" else "macho"
        assert claimed_size(data, str(image), fmt).needed == len(data), image
        assert image_problem(image, fmt, "x86_64" if "x86_64" in str(image) else "aarch64") is None, image


def test_lld_outputs_for_every_target(linked: dict[Target, bytes]) -> None:
    for t, data in linked.items():
        needed = claimed_size(data, t.name, t.format).needed
        if t.format == "coff":  # the last section and the COFF string table, then padding to FileAlignment
            assert len(data) - 512 < needed <= len(data), t
        else:
            assert needed == len(data), t
        assert truncation(data[:needed - 1], t.name, t.format) is not None, t
        assert truncation(data[:len(data) // 2], t.name, t.format) is not None, t


@FUZZ
@given(index=st.integers(min_value=0), cut=st.floats(min_value=0.0, max_value=0.9999))
def test_any_cut_of_a_real_image_is_caught(index: int, cut: float) -> None:
    image = REAL_IMAGES[index % len(REAL_IMAGES)]
    data = image.read_bytes()
    fmt = "elf" if image.suffix == ".so" else "macho"
    try:
        problem = truncation(data[:max(64, int(len(data) * cut))], str(image), fmt)
    except InputError as err:  # the header itself is cut (the load commands of a Mach-O, say)
        assert err.path == image
        return
    assert problem is not None and problem.startswith("is truncated: ")


@FUZZ
@given(index=st.integers(min_value=0), pos=st.integers(min_value=0, max_value=4095),
       value=st.integers(min_value=0, max_value=255), target=st.sampled_from(ALL_TARGETS))
def test_corrupt_headers_give_input_errors(linked: dict[Target, bytes], index: int, pos: int, value: int,
                                           target: Target) -> None:
    data = bytearray(linked[target])
    data[pos % min(len(data), 4096)] = value
    try:
        extent = claimed_size(bytes(data), "fuzzed", target.format)
    except InputError as err:
        assert str(err.path) == "fuzzed"
        return
    assert extent.needed >= 0
