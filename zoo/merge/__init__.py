"""Merge layer: kernels + registry, streaming engine, LoRA folding, output packaging.

Import the submodules you need (`zoo.merge.registry`, `zoo.merge.engine`); importing this package
does not import torch or mergekit, so listing modules stays cheap.
"""
