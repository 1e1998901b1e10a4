"""Julia's CPU model: feature tables, ``JULIA_CPU_TARGET`` parsing, target matching, host detection.

Everything here works from the tables in ``data/`` (written down from Julia's C/C++ sources, see
``data/README.md``), picked by Julia version and architecture:

- :mod:`.tables`    load the rows that apply to one (Julia version, architecture)
- :mod:`.features`  feature bitsets: names, dependencies, vector width, Julia's masking steps
- :mod:`.cpuparse`  ``JULIA_CPU_TARGET`` / ``-C`` strings, with Julia's rules and error messages
- :mod:`.match`     which image target a Julia session would pick, or why none
- :mod:`.host`      the CPU a session runs on: this machine, or one named with ``--cpu``
- :mod:`.official`  the target strings of the official Julia binaries
- :mod:`.cpulist`   a fleet as ``--cpu`` takes it (comma-separated, checked up front)
- :mod:`.fleet`     propose a target string for a fleet, and check any string against one
- :mod:`.sysimage`  the target list of a system image (what ``--sysimage`` matches first)
"""

from __future__ import annotations
