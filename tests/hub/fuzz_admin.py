"""Fuzz plans of routes_admin (settings, move, auth-check, super-squash, LFS files,
namespace-less ids), built from fuzz_strategies' value strategies."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.hub.fuzz_strategies import HEX64, NAMES, TEXT, Plan, json_body, often, shaped
from zoo.hub.server import routes_admin as A


def plans(repo: str) -> dict:
    """Plans of routes_admin: settings, move, auth-check, super-squash, namespace-less ids."""
    settings = json_body(
        {},
        {
            "private": st.booleans(),
            "visibility": st.sampled_from(["public", "private", "x"]),
            "gated": st.sampled_from([False, True, "auto", "manual", "x"]),
            "discussionsDisabled": st.booleans(),
        },
    )
    # fromRepo is a repo the fixture never creates: moving bob/scratch would pull it out from
    # under the other plans; the move itself is exercised by test_server_gaps.
    move = json_body(
        {
            "fromRepo": often(st.just("bob/never-created"), TEXT),
            "toRepo": often(NAMES.map(lambda n: f"bob/{n}"), TEXT),
        },
        {"type": st.sampled_from(["model", "dataset", "space"])},
    )
    return {
        A.update_settings: Plan([repo + "/settings"], settings, writes=True),
        A.move_repo: Plan(["/api/repos/move"], move, writes=True),
        A.auth_check: Plan([repo + "/auth-check", repo + "/auth-check/write"]),
        A.super_squash: Plan(
            [repo + "/super-squash/{name}"], json_body({}, {"message": TEXT}), writes=True
        ),
        A.list_lfs_files: Plan([repo + "/lfs-files"]),
        A.delete_lfs_files: Plan(
            [repo + "/lfs-files/batch"],
            json_body(
                {"deletions": shaped({"sha": st.lists(often(HEX64, TEXT), max_size=3)})},
                {},
            ),
            writes=True,
        ),
        A.no_namespace: Plan(
            ["/api/{t}/{name}", "/api/{t}/{name}/revision/{rev}", "/{name}/resolve/{rev}/{path}"]
        ),
    }
