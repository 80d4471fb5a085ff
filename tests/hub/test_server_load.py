"""Writers racing on the same heads and readers beside them, for 5 s on a real server process.

The 60 s version with 16 writers and 32 readers is benchmarks/hub_load.py; both run
tests/hub/load_driver.py. Each writer commits with parent_commit = the head it read, so conflicts
(412) are expected and retried; what must never happen is an acknowledged commit missing from the
history or unreadable at its oid, a commit nobody acknowledged, any other error, or a 5xx.
"""

from __future__ import annotations

from tests.hub.load_driver import LoadConfig, run_load


def test_no_commit_is_lost_under_concurrent_writers_and_readers(tmp_path):
    result = run_load(tmp_path, LoadConfig(seconds=5, writers=4, readers=8, repos=2))
    assert result["other_errors"] == 0, result["error_samples"]
    assert result["commits"] > 0 and result["checked"] == result["commits"]
    assert result["lost_commits"] == 0 and result["unexplained_commits"] == 0
    assert result["server_5xx"] == 0
    assert set(result["server_statuses"]) <= {"200", "206", "412"}, result["server_statuses"]
    assert result["latency"]["read"]["count"] > 0
