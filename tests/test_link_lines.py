"""Every Julia line x every target, for real: the pkgimage-shaped archive of that line's layout (members
and symbols as Julia writes them, docs/julia-linking.md §3.1-§3.2) linked with lld-19 against generated stubs,
then verified like Julia's loader would look at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylinkjl.link.api import link_image
from pylinkjl.link.toolchain import line_names
from pylinkjl.target import ALL_TARGETS, Target

ARCHIVES = Path(__file__).parent / "data" / "archives"
# The archive each line's Julia writes: 1.10.0 - 1.10.3 the jl_RTLD_DEFAULT_handle_pointer variant of the
# 1.10 layout, 1.10.4+ the get_jl_RTLD_DEFAULT_handle_addr one.
LAYOUT = {"1.9.0": "1.9", "1.10.0": "1.10.0", "1.10.1": "1.10.0", "1.10.4": "1.10", "1.11": "1.11", "1.12": "1.11",
          "1.13.0-rc1": "1.13", "release-1.13": "1.13", "master": "1.13"}


def test_every_line_has_a_layout() -> None:
    assert set(LAYOUT) == set(line_names())


@pytest.mark.parametrize("line", line_names())
@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_link_and_verify(line: str, target: Target, tmp_path: Path) -> None:
    from pylinkjl.images.verify import verify_image

    archive = ARCHIVES / f"{LAYOUT[line]}-{target.name}.a"
    out = tmp_path / f"Pkg_{line}.{target.dlext}"
    if line == "1.10.4" and target.os == "windows":
        # Julia 1.10.4 made runtime data dllimport (PR #54572) and links with --disable-auto-import; an
        # archive that reaches jl_RTLD_DEFAULT_handle the 1.10.0 way must be refused, as Julia's LLD would.
        from pylinkjl.errors import LinkError

        with pytest.raises(LinkError) as err:
            link_image(ARCHIVES / f"1.10.0-{target.name}.a", out, target=target, julia_version=line)
        # 1.10.0-shaped objects reach runtime data (jl_nothing first) without dllimport.
        assert any(a.startswith("[julia-data-without-dllimport] `jl_nothing`") for a in err.value.advice)
        assert not out.exists()
    result = link_image(archive, out, target=target, julia_version=line)
    report = verify_image(result.output, object=archive, target=target, julia_version=line)
    assert report.ok, report.to_dict()
