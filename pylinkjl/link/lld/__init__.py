"""Finding LLD: an ordered list of candidates (:mod:`.search`), each probed once (:mod:`.probe`), the first
usable one wins (:mod:`.choose`); the driver each program name selects is the one table in :mod:`.names`."""

from pylinkjl.link.lld.choose import choose, describe, find_lld, rejection, version_notes
from pylinkjl.link.lld.names import (
    DRIVER_OF_FLAVOR,
    ENV_VAR,
    Driver,
    Flavor,
    canonical_flavor,
    driver_of,
    flavor_args,
    serves,
    target_flavor,
)
from pylinkjl.link.lld.probe import MIN_VERSION, LldProbe, clear_probe_cache, probe, version_argv
from pylinkjl.link.lld.search import LldCandidate, candidates, julia_lld_env

__all__ = ["DRIVER_OF_FLAVOR", "ENV_VAR", "MIN_VERSION", "Driver", "Flavor", "LldCandidate", "LldProbe",
           "candidates", "canonical_flavor", "choose", "clear_probe_cache", "describe", "driver_of", "find_lld",
           "flavor_args", "julia_lld_env", "probe", "rejection", "serves", "target_flavor", "version_argv",
           "version_notes"]
