"""Generate object archives shaped like the ones Julia's ``jl_dump_native`` writes for a package image.

For every Julia line (layouts ``1.9``, ``1.10``, ``1.11``, ``1.13``) and all seven targets: LLVM IR
text is planned in pure Python (:func:`render_ir`), compiled with llc and archived with llvm-ar
(:func:`generate_archive`). The committed samples and test archives are rebuilt with
``python -m fixturegen --regenerate``.
"""

from __future__ import annotations

from fixturegen.build import generate_archive
from fixturegen.ir import render_ir
from fixturegen.plan import ImagePlan, build_plan, member_names
from fixturegen.spec import LAYOUTS, FixtureSpec, layout_for_version
from fixturegen.tools import ToolFailedError, ToolNotFoundError, Tools, find_tools

__all__ = [
    "LAYOUTS", "FixtureSpec", "ImagePlan", "ToolFailedError", "ToolNotFoundError", "Tools", "build_plan",
    "find_tools", "generate_archive", "layout_for_version", "member_names", "render_ir",
]
