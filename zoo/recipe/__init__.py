"""Recipes: mergekit-style YAML plus a zoo block; selection, pinning and the lock."""
