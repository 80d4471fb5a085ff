"""Merge kernels: mergekit's own methods called tensor by tensor, plus zoo-native methods.

Every kernel is pure: tensors in, one tensor out, no I/O. `zoo.merge.registry` lists them.
"""
