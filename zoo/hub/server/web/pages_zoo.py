"""The pages no Hub has, for a zoo: a model's tree across repos and the experiment leaderboards."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from zoo.hub.server.errors import HubError, repo_not_found
from zoo.hub.server.http import Call
from zoo.hub.server.web import leaderboard as LB
from zoo.hub.server.web.pages_repo import open_repo
from zoo.hub.server.web.render import page
from zoo.hub.server.web.zoo_tree import model_tree


async def tree_of_models_page(call: Call):
    """GET /{repo}/tree-of-models[?rev=REV]: the lineage graph, each node pinned and linked."""
    if call.groups[0]:  # datasets have no model tree
        raise repo_not_found(f"{call.groups[1]}/{call.groups[2]}")
    rev = call.request.query_params.get("rev") or None

    def build() -> dict:
        view = open_repo(call, rev)
        tree = model_tree(call.store, call.user, view.state, view.commit["id"])
        return {"repo": view, "tab": "tree-of-models", "tree": tree}

    return page(call, "tree_of_models.html", **await run_in_threadpool(build))


async def experiments_page(call: Call):
    """GET /zoo/experiments: every experiment with a member the visitor may see."""
    found = await run_in_threadpool(LB.experiments, call.store, call.user)
    return page(call, "experiments.html", experiments=found)


async def experiment_page(call: Call):
    """GET /zoo/experiments/{name}: the experiment's leaderboard; 404 when it has no member."""
    name = call.groups[0]
    board = await run_in_threadpool(LB.board, call.store, call.user, name)
    if board is None:
        raise HubError(404, "ExperimentNotFound", f"No experiment named {name!r} on this Hub")
    return page(call, "experiment.html", board=board)
