"""The real Julia runtime as the judge of a package image (``pylinkjl verify IMAGE --runtime TREE``).

:func:`judge_with_runtime` boots the tree's own ``libjulia`` with a system image in a child process (natively,
under qemu-aarch64 or under Wine), calls ``jl_restore_package_image_from_file`` on the image and returns a
:class:`JudgeResult`: the runtime's checks that passed, where it stopped, and its own message.
"""

from pylinkjl.images.judge.result import JudgeResult, Stage
from pylinkjl.images.judge.run import judge_inspected, judge_with_runtime

__all__ = ["JudgeResult", "Stage", "judge_inspected", "judge_with_runtime"]
