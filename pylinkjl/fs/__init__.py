"""The file system pylinkjl writes to: when two paths name one file (:mod:`.identity`), which device a path is
on and how much room is left (:mod:`.space`), folders made for an output and removed again on failure
(:mod:`.folders`), and what a running pylinkjl leaves beside its outputs (:mod:`.leftovers`). Reading binary
files safely is :mod:`pylinkjl.binfmt.files`; the errors are :class:`pylinkjl.errors.FileSystemError`."""
