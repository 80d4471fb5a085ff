"""The offline real-data suite: `build_suite(size, out)` (see zoo.data.suite.builder).

The builder loads on first use (zoo.lazy): the source modules stay unread until a build.
"""

from zoo.lazy import lazy_exports

_EXPORTS = {"build_suite": "zoo.data.suite.builder"}

__all__ = ["build_suite"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
