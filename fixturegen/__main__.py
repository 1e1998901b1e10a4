from __future__ import annotations

from fixturegen.cli import main

main()
