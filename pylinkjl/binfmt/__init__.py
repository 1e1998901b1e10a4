"""Readers of the binary formats pylinkjl meets: archives, objects, images, target lists.

Everything here except the LIEF facade is pure Python and cheap to import, so ``pylinkjl link``
can look at its inputs without loading LIEF.
"""
