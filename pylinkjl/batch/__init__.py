"""Batch relinking: many links planned one by one and run several at a time (:mod:`.run`), the items and
results they are made of (:mod:`.items`) and the manifests build tools write (:mod:`.manifest`)."""

from pylinkjl.batch.items import BatchInterrupted, BatchItem, ItemResult, exit_code
from pylinkjl.batch.manifest import MAX_MANIFEST_BYTES, read_manifest
from pylinkjl.batch.run import Parallelism, cpu_count, lld_threads, parallelism, relink_many

__all__ = ["MAX_MANIFEST_BYTES", "BatchInterrupted", "BatchItem", "ItemResult", "Parallelism", "cpu_count",
           "exit_code", "lld_threads", "parallelism", "read_manifest", "relink_many"]
