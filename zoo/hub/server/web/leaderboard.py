"""An experiment's leaderboard: its members, their base and what was built from them, against
every task they were evaluated on, with per-type means, the best per column and a plot.

Members are the model repos whose card `zoo:` block (or zoo.json) names the experiment
(training.experiment or labels.experiment); then their base (the repo of base_model), then every
repo whose zoo.json names a member, or a model built from one, as a parent (merged models, update
models, a merged model's next revisions; any lineage revision of the repo counts: main, its tags,
the earlier zoo.json on main's history) or labels.same_weights_as (a BLS baseline), to a fixed
point. Everything is read at main, as the visitor may see it.

Scores come from the commit's `.eval_results/*.yaml` (the Hub's per-benchmark format, parsed by
huggingface_hub; the task type is the first part of an entry's `notes`, as zoo writes it:
'retrieval; main score ndcg_at_10'), else from the card's `model-index`. Parsed scores are cached
per blob, the plot per (experiment, rows and their commits).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from statistics import fmean

import yaml
from huggingface_hub import parse_eval_result_entries
from huggingface_hub.repocard_data import model_index_to_eval_results

from zoo.hub.server.auth import User
from zoo.hub.server.store import HubStore
from zoo.hub.server.web.render import render, repo_url
from zoo.hub.server.web.repo_view import LruCache, member_facts, visible_heads, zoo_json
from zoo.hub.server.web.zoo_tree import lineage_revisions
from zoo.tasks import TASK_TYPES, snake
from zoo.types import PINNED_RE, REPO_ID_RE

EVAL_DIR = ".eval_results/"
_YAML_MAX = 256 * 1024
_TYPE_ORDER = {name: i for i, name in enumerate(TASK_TYPES)}
_KIND_ORDER = {"base": 0, "bag": 1, "merged": 2, "update": 3}
AVERAGE = "average"

_scores, _plots = LruCache(2048), LruCache(128)


@dataclass(frozen=True)
class Model:
    """One repo at main, as the leaderboard needs it."""

    id: str
    sha: str
    private: bool
    kind: str | None
    experiment: str | None
    role: str | None  # labels.role, e.g. 'bls-baseline'
    base: str | None  # repo of base_model
    parents: tuple[str, ...]  # repos named as parents by any lineage revision, same_weights_as
    scores: dict[str, tuple[str, float]]  # task -> (type, main score)
    same_as: str | None = None  # labels.same_weights_as: 'repo@sha' holding the same weights

    @property
    def url(self) -> str:
        return repo_url("model", self.id)


@dataclass
class Cell:
    value: float | None
    best: bool = False

    @property
    def text(self) -> str:
        return "—" if self.value is None else f"{100 * self.value:.2f}"

    @property
    def sort(self) -> str:
        """The cell's data-value: missing scores sort below every score."""
        return "-Infinity" if self.value is None else f"{self.value:.6f}"


@dataclass
class Row:
    model: Model
    why: str  # 'member' | 'base' | 'derived'
    cells: list[Cell]  # one per Board.columns


@dataclass
class Board:
    name: str
    rows: list[Row]
    types: list[str]  # the task types, in zoo's order
    tasks: list[tuple[str, str]]  # (task, type), by type then name
    plot_svg: str

    @property
    def columns(self) -> list[tuple[str, str, str]]:
        """(kind, label, title) of the score columns: the average, each type's mean, each task."""
        return [
            ("mean", AVERAGE, "mean over every task"),
            *(("mean", t, f"mean over the {t} tasks") for t in self.types),
            *(("task", name, ttype) for name, ttype in self.tasks),
        ]


def task_type(text: str | None) -> str:
    """zoo's name of a task type, written either way ('PairClassification', 'pair_classification')
    or first in an eval entry's notes ('retrieval; main score ndcg_at_10'); else 'other'."""
    word = (text or "").split(";")[0].strip()
    if word in TASK_TYPES:
        return word
    return snake(word) if snake(word) in TASK_TYPES else (word or "other")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def eval_results_scores(text: str) -> dict[str, tuple[str, float]]:
    """task -> (type, value) of one `.eval_results/*.yaml` text ({} when it does not parse)."""
    try:
        data = yaml.safe_load(text)
        entries = parse_eval_result_entries(data if isinstance(data, list) else [data])
    except Exception:  # any malformed file (user content) counts as holding no score
        return {}
    out = {}
    for e in entries:
        value = _number(e.value)
        if value is not None and isinstance(e.task_id, str):
            out[e.task_id] = (task_type(e.notes), value)
    return out


def model_index_scores(card: dict) -> dict[str, tuple[str, float]]:
    """task -> (type, value) from the card's `model-index` (the first metric of each result)."""
    index = card.get("model-index")
    if not isinstance(index, list) or not index:
        return {}
    try:
        _name, results = model_index_to_eval_results(index)
    except Exception:  # a malformed model-index (user content) holds no score
        return {}
    out: dict[str, tuple[str, float]] = {}
    for r in results:
        value = _number(r.metric_value)
        name = r.dataset_name or r.dataset_type
        if value is not None and isinstance(name, str) and name not in out:
            out[name] = (task_type(r.task_name or r.task_type), value)
    return out


def commit_scores(store: HubStore, commit: dict, card: dict) -> dict[str, tuple[str, float]]:
    """The scores a commit holds: its `.eval_results/*.yaml`, else its card's model-index."""
    files = sorted(
        (p, e)
        for p, e in commit["tree"].items()
        if p.startswith(EVAL_DIR) and p.endswith((".yaml", ".yml")) and e["size"] <= _YAML_MAX
    )
    if not files:
        return _scores.get(("card", commit["id"]), lambda: model_index_scores(card))
    out: dict[str, tuple[str, float]] = {}
    for _path, entry in files:

        def read(sha=entry["sha256"]) -> dict:
            try:
                text = store.objects.path(sha).read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                return {}
            return eval_results_scores(text)

        out.update(_scores.get(entry["sha256"], read))
    return out


def _repo_of(ref) -> str | None:
    """The repo of 'org/name' or of a pinned 'org/name@<sha>'; None for anything else."""
    if not isinstance(ref, str):
        return None
    pinned = PINNED_RE.match(ref)
    return pinned.group(1) if pinned else ref if REPO_ID_RE.match(ref) else None


def models(store: HubStore, user: User | None) -> list[Model]:
    """Every model repo `user` may see, at main (scores read lazily per commit, cached)."""
    out = []
    for state, commit, card, _tags in visible_heads(store, user, "model"):
        zoo = zoo_json(store, commit)
        kind, experiment = member_facts(store, commit, card)
        labels = zoo.get("labels") if isinstance(zoo.get("labels"), dict) else {}
        # parents over the repo's lineage revisions: a merged model's main (its next revision)
        # names its earlier self and the update model, the earlier revision the bags
        revs = lineage_revisions(store, state)
        parents = [ref for rev in revs for relation, ref in rev.refs if relation == "parent"]
        related = [*parents, labels.get("same_weights_as")]
        out.append(
            Model(
                id=state["id"],
                sha=commit["id"],
                private=state["private"],
                kind=kind,
                experiment=experiment,
                role=labels.get("role") if isinstance(labels.get("role"), str) else None,
                base=_repo_of(zoo.get("base_model")),
                parents=tuple(r for r in map(_repo_of, related) if r),
                scores=commit_scores(store, commit, card),
                same_as=same if isinstance(same := labels.get("same_weights_as"), str) else None,
            )
        )
    return out


def experiments(store: HubStore, user: User | None) -> list[tuple[str, int, list[str]]]:
    """(name, members, their kinds) of every experiment with a member `user` may see."""
    counts: Counter = Counter()
    kinds: dict[str, set[str]] = {}
    for _state, commit, card, _tags in visible_heads(store, user, "model"):
        kind, experiment = member_facts(store, commit, card)
        if experiment:
            counts[experiment] += 1
            kinds.setdefault(experiment, set()).add(kind or "model")
    return [(name, counts[name], sorted(kinds[name])) for name in sorted(counts)]


def select(all_models: list[Model], name: str) -> list[tuple[Model, str]]:
    """(model, why) of the experiment's rows: members, their bases, what was built from them."""
    by_id = {m.id.lower(): m for m in all_models}
    chosen: dict[str, str] = {m.id.lower(): "member" for m in all_models if m.experiment == name}
    if not chosen:
        return []
    built = set(chosen)
    while True:
        more = [
            m.id.lower()
            for m in all_models
            if m.id.lower() not in chosen and any(p.lower() in built for p in m.parents)
        ]
        if not more:
            break
        for key in more:
            chosen[key] = "derived"
            built.add(key)
    for key in list(chosen):
        base = by_id[key].base
        if base and base.lower() in by_id and base.lower() not in chosen:
            chosen[base.lower()] = "base"
    return [(by_id[k], why) for k, why in chosen.items()]


# Written by zoo's merge/boom evaluation (zoo/pipelines/evaluation.py): every column it scored
# (the base and each parent, pinned as repo@sha, and the merged model) on the same tasks.
CARD_RESULTS = "eval/card-results.json"
_CARD_RESULTS_MAX = 4 << 20


def _measured(text: str) -> dict[str, tuple[str, dict[str, tuple[str, float]]]]:
    """{repo (lower case): (sha, {task: (type, score)})} of a card-results file's pinned columns."""
    try:
        data = json.loads(text)
        types = {t["name"]: task_type(t.get("type")) for t in data["tasks"]}
        columns, scores = data["columns"], data["scores"]
    except (ValueError, KeyError, TypeError):
        return {}
    out = {}
    for col in columns if isinstance(columns, list) else []:
        ref = col.get("ref") if isinstance(col, dict) else None
        if not _repo_of(ref) or "@" not in ref:
            continue  # the merged model itself is a local folder while it is evaluated
        repo, _, sha = ref.partition("@")
        got = scores.get(col.get("label")) if isinstance(scores, dict) else None
        values = {
            k: (types.get(k, "other"), _number(v))
            for k, v in (got if isinstance(got, dict) else {}).items()
            if _number(v) is not None
        }
        if values:
            out[repo.lower()] = (sha, values)
    return out


def _with_measured(store: HubStore, picked: list[tuple[Model, str]]) -> list[tuple[Model, str]]:
    """Rows without a score of their own for a task take the one a derived model's evaluation
    measured for them at the same commit (the base and the bags, scored beside the merge)."""
    found: dict[str, dict[str, tuple[str, float]]] = {}
    for model, _why in picked:
        commit = store.repos.get_commit(model.sha)
        entry = commit["tree"].get(CARD_RESULTS) if commit else None
        if entry is None or entry["size"] > _CARD_RESULTS_MAX:
            continue
        path = store.objects.path(entry["sha256"])
        measured = _scores.get(
            ("measured", entry["sha256"]), lambda p=path: _measured(p.read_text())
        )
        for repo, (sha, scores) in measured.items():
            found.setdefault(f"{repo}@{sha}", {}).update(scores)
    filled = [
        (replace(m, scores={**found.get(f"{m.id.lower()}@{m.sha}", {}), **m.scores}), why)
        for m, why in picked
    ]
    # A copy of another model's weights (the BLS baseline) scores what they score, at that commit.
    by_ref = {f"{m.id.lower()}@{m.sha}": m.scores for m, _why in filled}
    return [
        (replace(m, scores={**by_ref.get((m.same_as or "").lower(), {}), **m.scores}), why)
        for m, why in filled
    ]


def board(store: HubStore, user: User | None, name: str) -> Board | None:
    """The leaderboard of experiment `name` as `user` may see it; None when it has no member."""
    picked = _with_measured(store, select(models(store, user), name))
    if not picked:
        return None
    types_of: dict[str, str] = {}
    for model, _why in sorted(picked, key=lambda p: p[0].id.lower()):
        for task, (ttype, _v) in sorted(model.scores.items()):
            types_of.setdefault(task, ttype)
    types = sorted(set(types_of.values()), key=lambda t: (_TYPE_ORDER.get(t, 99), t))
    tasks = sorted(types_of.items(), key=lambda kv: (_TYPE_ORDER.get(kv[1], 99), kv[1], kv[0]))
    rows = [Row(m, why, _cells(m, types, tasks)) for m, why in picked]
    _mark_best(rows)
    rows.sort(key=_default_order)
    out = Board(name, rows, types, tasks, "")
    key = (name, tuple((r.model.id, r.model.sha) for r in rows))
    out.plot_svg = _plots.get(key, lambda: plot_svg(out))
    return out


def _mean(values: list[float | None]) -> float | None:
    return fmean(values) if values and None not in values else None  # type: ignore[arg-type]


def _cells(model: Model, types: list[str], tasks: list[tuple[str, str]]) -> list[Cell]:
    """The average (over every task), each type's mean, each task: a mean only when complete."""
    values = {t: model.scores[t][1] if t in model.scores else None for t, _ty in tasks}
    means = [_mean([values[t] for t, ty in tasks if ty == group]) for group in types]
    return [Cell(_mean(list(values.values()))), *map(Cell, means), *map(Cell, values.values())]


def _mark_best(rows: list[Row]) -> None:
    """Mark the highest value of every column (ties all marked; every main score grows better)."""
    for i in range(len(rows[0].cells) if rows else 0):
        present = [r.cells[i].value for r in rows if r.cells[i].value is not None]
        if present:
            top = max(present)
            for r in rows:
                r.cells[i].best = r.cells[i].value is not None and r.cells[i].value >= top - 1e-12


def _default_order(row: Row):
    """Best average first; rows without one after, by kind then name."""
    avg = row.cells[0].value
    kind = _KIND_ORDER.get(row.model.kind or "", 9)
    return (avg is None, -(avg or 0.0), kind, row.model.id.lower())


PLOT_WIDTH, LABEL_W, BAR_H, GAP = 760, 240, 9, 10
PALETTE = ("#1d4ed8", "#d97706", "#15803d", "#9333ea", "#dc2626", "#0891b2", "#4b5563", "#ca8a04")


def plot_svg(b: Board) -> str:
    """A horizontal bar chart, one group of bars per model (the average and each type's mean;
    the tasks when no model has a complete mean), drawn as plain SVG by a template: no script,
    no request, a few kB, well under a millisecond to write."""
    columns = b.columns
    groups = [i for i, (kind, _l, _t) in enumerate(columns) if kind == "mean"]
    if not any(r.cells[i].value is not None for r in b.rows for i in groups):
        groups = [i for i, (kind, _l, _t) in enumerate(columns) if kind == "task"][: len(PALETTE)]
    series = [(columns[i][1], PALETTE[n % len(PALETTE)], i) for n, i in enumerate(groups)]
    rows = [r for r in b.rows if any(r.cells[i].value is not None for i in groups)]
    scale = (PLOT_WIDTH - LABEL_W - 60) / 100
    legend, x, y = [], LABEL_W, 4
    for label, colour, _i in series:  # left to right, wrapped at the plot's width
        step = 14 + 7 * len(label) + 16
        if x + step > PLOT_WIDTH and x > LABEL_W:
            x, y = LABEL_W, y + 16
        legend.append({"label": label, "colour": colour, "x": x, "y": y})
        x += step
    bars, y = [], y + 24
    axis_top = y - 6
    for r in rows:
        top = y
        for label, colour, i in series:
            value = r.cells[i].value
            if value is not None:
                width = max(0.0, 100 * value) * scale
                bars.append({"y": y, "w": round(width, 1), "colour": colour,
                             "text": r.cells[i].text, "label": label})  # fmt: skip
                y += BAR_H + 1
        bars.append({"model": r.model.id, "y": (top + y) / 2 + 4})
        y += GAP
    return render(
        "_board_plot.html",
        bars=bars,
        legend=legend,
        axis_top=axis_top,
        width=PLOT_WIDTH,
        height=y + 10,
        label_w=LABEL_W,
        scale=scale,
        ticks=[0, 25, 50, 75, 100],
        title=b.name,
    )
