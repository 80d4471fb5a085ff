"""zoo: a Hub-centric model zoo for text-embedding models.

BOOM: bagging-based robust model merging.
"""

__version__ = "0.1.0"
