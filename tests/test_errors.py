"""One failure report and one error dict (pylinkjl.errors), the same for the library, the CLI and batch JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pylinkjl.errors import InputError, LinkError, PylinkjlError

ARGV = ["ld.lld", "-shared", *[f"in{i}.o" for i in range(20)], "-o", "out.so"]


def _link_error() -> LinkError:
    return LinkError("LLD failed with exit code 1 linking out.so", argv=ARGV, returncode=1,
                     output="ld.lld: error: undefined symbol: jl_foo\n", advice=["link against libjulia"])


def test_str_of_a_link_error_is_what_the_cli_prints() -> None:
    text = str(_link_error())
    assert text.splitlines()[0] == "LLD failed with exit code 1 linking out.so"
    assert "in19.o" in text  # the whole command, not the condensed one
    assert "  ld.lld: error: undefined symbol: jl_foo" in text
    assert "advice: link against libjulia" in text


def test_the_condensed_report_elides_the_middle_of_the_command() -> None:
    text = _link_error().report(verbose=False)
    assert "more) ..." in text and "in10.o" not in text and "out.so" in text


def test_one_error_dict() -> None:
    data = _link_error().to_dict()
    assert data["type"] == "LinkError" and data["exit_code"] == 5 and data["argv"] == ARGV
    assert data["lld_output"].startswith("ld.lld: error") and data["advice"] == ["link against libjulia"]
    data = InputError("x.a", "not an archive", offset=8, hint="relink it").to_dict()
    assert data == {"type": "InputError", "exit_code": 3, "message": "x.a (at offset 0x8): not an archive",
                    "hint": "relink it", "path": "x.a", "offset": 8}
    assert str(PylinkjlError("m", hint="h")) == "m\nhint: h"


def test_cli_json_failure_has_the_same_error_dict(tmp_path: Path) -> None:
    bad = tmp_path / "x.a"
    bad.write_bytes(b"not an archive at all")
    done = subprocess.run([sys.executable, "-m", "pylinkjl", "link", str(bad), "-o", str(tmp_path / "x.so"),
                           "--json"], check=False, capture_output=True, text=True)
    assert done.returncode == 3
    payload = json.loads(done.stdout)
    assert payload["ok"] is False and payload["error"]["type"] == "InputError"
    assert payload["error"]["path"] == str(bad)
