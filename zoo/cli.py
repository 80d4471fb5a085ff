"""The `zoo` command: translate arguments, call one pipeline, map errors to exit codes.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 any other failure. --debug shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo import __version__
from zoo.cli_text import bag_row, ls_table, plan_text, show_text
from zoo.errors import UserError, ZooError, disk_full
from zoo.hub.metadata import KINDS, ZooMetadata
from zoo.types import ratio_name

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"zoo: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _hub_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hub",
        help="Hub URL or embedded-hub directory (env ZOO_HUB; default .zoo/hub "
        "if present, else ~/.cache/zoo/hub)",
    )
    p.add_argument(
        "--token",
        help="access token (default: HF_TOKEN, the huggingface_hub login, or "
        "the embedded hub's admin token)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; help text comes from the schema descriptions where one exists."""
    parser = _Parser(prog="zoo", description="A Hub-centric model zoo for text-embedding models.")
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_hub(sub)
    _add_members(sub)
    _add_merge(sub)
    _add_data(sub)
    _add_bag(sub)
    _add_boom(sub)
    _add_update(sub)
    _add_eval(sub)
    return parser


def _add_hub(sub: Any) -> None:
    hub = sub.add_parser("hub", help="run and administer the embedded Hub").add_subparsers(
        dest="hub_command", required=True, parser_class=_Parser
    )
    serve = hub.add_parser("serve", help="serve a hub directory over HTTP (long-running)")
    serve.add_argument("--root", default=None, help="hub directory (default: as --hub)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_cmd_serve)
    token = hub.add_parser("token", help="manage access tokens").add_subparsers(
        dest="token_command", required=True, parser_class=_Parser
    )
    add = token.add_parser("add", help="create a token; prints it once, stores only its hash")
    add.add_argument("name", help="user name the token acts as")
    add.add_argument("--root", default=None, help="hub directory (default: as --hub)")
    add.add_argument("--write", action="store_true", help="allow writes (default: read-only)")
    add.set_defaults(func=_cmd_token_add)


def _add_members(sub: Any) -> None:
    fields = ZooMetadata.model_fields
    push = sub.add_parser("push", help="publish a model folder as a zoo member (one commit)")
    push.add_argument("dir", type=Path, help="local model folder")
    push.add_argument("repo_id", help="target repo 'namespace/name'")
    push.add_argument("--kind", choices=KINDS, default=None, help=fields["kind"].description)
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument(
        "--meta",
        type=_kv,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=fields["labels"].description + "; base_model=, parents= set those fields",
    )
    push.add_argument("--tag", default=None, help="also tag the new commit")
    push.add_argument("--json", action="store_true", help="machine-readable output")
    push.set_defaults(func=_cmd_push)
    ls = sub.add_parser("ls", help="list zoo members")
    ls.add_argument("--kind", choices=KINDS, default=None, help=fields["kind"].description)
    ls.add_argument("--tag", action="append", default=[], help="Hub tag filter (repeatable)")
    ls.add_argument(
        "--meta",
        type=_kv,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata query, e.g. experiment=demo or ratio=0.4 (repeatable, AND)",
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_cmd_ls)
    show = sub.add_parser("show", help="zoo metadata, revisions and lineage of a member")
    show.add_argument("ref", help="REPO_ID[@REV]")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_cmd_show)
    pull = sub.add_parser("pull", help="download a member, verified; prints the local path")
    pull.add_argument("ref", help="REPO_ID[@REV]")
    pull.add_argument("--to", type=Path, default=None, help="target folder (default: the HF cache)")
    pull.add_argument("--json", action="store_true", help="machine-readable output")
    pull.set_defaults(func=_cmd_pull)
    for p in (push, ls, show, pull):
        _hub_options(p)


def _add_data(sub: Any) -> None:
    data = sub.add_parser("data", help="training and evaluation data").add_subparsers(
        dest="data_command", required=True, parser_class=_Parser
    )
    suite = data.add_parser("suite", help="the offline real-data suite").add_subparsers(
        dest="suite_command", required=True, parser_class=_Parser
    )
    build = suite.add_parser("build", help="build the suite (task folders + corpus.yaml + stats)")
    build.add_argument(
        "--size",
        choices=("tiny", "small", "full"),
        required=True,
        help="tiny (seconds, tests), small (the demo's), full",
    )
    build.add_argument("--out", type=Path, required=True, help="output folder")
    build.add_argument("--push", default=None, metavar="ORG/NAME", help="publish as a dataset repo")
    build.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(build)
    build.set_defaults(func=_cmd_suite_build)


def _cmd_suite_build(args: argparse.Namespace) -> int:
    from zoo import pipelines

    path, pushed = pipelines.build_suite(
        args.size, args.out, push=args.push, hub=args.hub, token=args.token
    )
    _emit(
        args,
        {"path": str(path), "pushed": pushed},
        str(path) + (f"\npushed {pushed}" if pushed else ""),
    )
    return 0


def _ratios(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    bad = [v for v in values if not 0 < v <= 1]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"ratios must lie in (0, 1], got {text!r}")
    return values


def _train_options(p: argparse.ArgumentParser) -> None:
    """Training settings shared by `bag train` and `boom`; help from TrainConfig's descriptions."""
    from zoo.train.config import TrainConfig

    f = TrainConfig.model_fields
    train = p
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--lora-r", type=int, default=None, help=f["lora_r"].description)
    mode.add_argument("--full", action="store_true", help="full fine-tuning (the default)")
    train.add_argument("--lora-alpha", type=int, default=None, help=f["lora_alpha"].description)
    train.add_argument("--seed", type=int, default=0, help="seed for sampling and training")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f["steps"].description)
    length.add_argument("--epochs", type=float, default=None, help=f["epochs"].description)
    train.add_argument("--batch-size", type=int, default=None, help=f["batch_size"].description)
    train.add_argument("--lr", type=float, default=None, help=f["learning_rate"].description)
    train.add_argument(
        "--max-seq-length", type=int, default=None, help=f["max_seq_length"].description
    )
    train.add_argument(
        "--checkpoint-every", type=int, default=None, help=f["checkpoint_every"].description
    )
    train.add_argument("--bootstrap", action="store_true", help="sample with replacement")


def _train_settings(args: argparse.Namespace) -> dict:
    settings = {
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "steps": args.steps,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "max_seq_length": args.max_seq_length,
        "checkpoint_every": args.checkpoint_every,
    }
    return {k: v for k, v in settings.items() if v is not None}


def _add_bag(sub: Any) -> None:
    bag = sub.add_parser("bag", help="BOOM bags").add_subparsers(
        dest="bag_command", required=True, parser_class=_Parser
    )
    train = bag.add_parser(
        "train", help="train one model per bag ratio on a corpus, optionally publish"
    )
    train.add_argument("corpus", type=Path, help="corpus spec YAML (e.g. a suite's corpus.yaml)")
    train.add_argument("--base", required=True, help="base model: local folder or REPO_ID[@REV]")
    train.add_argument(
        "--ratios",
        type=_ratios,
        default=None,
        help="bag ratios, e.g. 0.4,0.6,0.8,1.0 (default: the corpus spec's)",
    )
    _train_options(train)
    train.add_argument(
        "--push-to",
        default=None,
        metavar="ORG/PREFIX",
        help="publish each bag as ORG/PREFIX-<ratio> (kind=bag)",
    )
    train.add_argument(
        "--experiment", default=None, help="experiment name (default: the prefix's name)"
    )
    train.add_argument(
        "--eval-task-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="evaluate each bag on this task folder; scores go into its metadata",
    )
    train.add_argument("--out", type=Path, default=Path(".zoo/bags"), help="where bags are trained")
    train.add_argument("--executor", choices=("local", "ray"), default="local", help="local or ray")
    train.add_argument("--workers", type=int, default=1, help="local processes training at once")
    train.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(train)
    train.set_defaults(func=_cmd_bag_train)


def _cmd_bag_train(args: argparse.Namespace) -> int:
    from zoo.pipelines.bags import BagOptions, prepare_bags, train_bags

    job = prepare_bags(
        args.corpus,
        BagOptions(
            base=args.base,
            ratios=args.ratios,
            seed=args.seed,
            bootstrap=args.bootstrap,
            push_to=args.push_to,
            experiment=args.experiment,
            out=args.out,
            executor=args.executor,
            workers=args.workers,
            progress=not args.json,
            eval_task_dirs=tuple(args.eval_task_dir),
            train=_train_settings(args),
        ),
    )
    with _open(args, create=True, needed=job.needs_hub) as hub:
        outcomes = train_bags(hub, job)
    rows = [bag_row(o) for o in outcomes]
    text = "\n".join(
        f"bag {ratio_name(r['ratio'])}: {r['published'] or r['path']}  "
        + (
            "(reused: same manifest and settings already published)"
            if r["reused"]
            else f"({r['examples_seen']} examples, {r['wall_time_s']} s, loss {r['final_loss']})"
        )
        for r in rows
    )
    _emit(args, rows, text)
    return 0


def _add_boom(sub: Any) -> None:
    boom = sub.add_parser(
        "boom", help="BOOM end to end: bags -> publish -> recipe -> merge -> eval -> publish"
    )
    boom.add_argument("corpus", type=Path, help="corpus spec YAML (e.g. a suite's corpus.yaml)")
    boom.add_argument("--base", required=True, help="base model REPO_ID[@REV] on the hub")
    boom.add_argument(
        "--ratios", type=_ratios, default=None, help="bag ratios (default: the corpus spec's)"
    )
    boom.add_argument(
        "--method", default="multislerp", help="merge method (default multislerp, as BOOM)"
    )
    boom.add_argument(
        "--publish", required=True, metavar="ORG/NAME", help="repo of the merged model"
    )
    boom.add_argument(
        "--eval-task-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="task folder to evaluate base, bags and merged model on (repeatable)",
    )
    boom.add_argument(
        "--bag-prefix", default=None, metavar="ORG/PREFIX", help="bag repos (default ORG/bag)"
    )
    boom.add_argument(
        "--bls",
        default=None,
        metavar="ORG/NAME",
        help="also publish the batch-level-shuffling baseline (the ratio-1.0 bag) here",
    )
    boom.add_argument("--out", type=Path, default=Path(".zoo/boom"), help="working folder")
    _train_options(boom)
    boom.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(boom)
    boom.set_defaults(func=_cmd_boom)


def _cmd_boom(args: argparse.Namespace) -> int:
    from zoo.pipelines.boom import BoomOptions, boom

    options = BoomOptions(
        base=args.base,
        publish=args.publish,
        method=args.method,
        ratios=args.ratios,
        task_dirs=tuple(args.eval_task_dir),
        bag_prefix=args.bag_prefix,
        bls_repo=args.bls,
        out=args.out,
        seed=args.seed,
        progress=not args.json,
        train=_train_settings(args),
    )
    with _open(args, create=True) as hub:
        result = boom(hub, args.corpus, options)
    data = {
        "bags": [bag_row(b) for b in result.bags],
        "recipe": str(result.recipe),
        "published": result.merged.published,
        "tag": result.merged.tag,
        "bls": result.bls,
    }
    text = "\n".join(
        [
            *(
                f"bag {ratio_name(r['ratio'])}: {r['published']}{' (reused)' if r['reused'] else ''}"
                for r in data["bags"]
            ),
            f"recipe: {data['recipe']}",
            f"merged: {data['published']} (tag {data['tag']})",
            *([f"bls: {data['bls']}"] if data["bls"] else []),
        ]
    )
    _emit(args, data, text)
    return 0


def _add_update(sub: Any) -> None:
    up = sub.add_parser(
        "update",
        help="train an update model on new data + replay, merge it into "
        "CURRENT, publish CURRENT's next revision",
    )
    up.add_argument("current", metavar="CURRENT_REF", help="the model in production, REPO_ID[@REV]")
    up.add_argument(
        "corpus", type=Path, metavar="NEW_CORPUS.yaml", help="corpus spec of the new data"
    )
    up.add_argument(
        "--replay",
        type=float,
        required=True,
        metavar="FRACTION",
        help="fraction of the rows CURRENT was trained on to train on again, in (0, 1]",
    )
    up.add_argument(
        "--init",
        choices=("base", "current"),
        default="base",
        help="train the update model from CURRENT's base (default) or from CURRENT",
    )
    up.add_argument(
        "--method",
        default="multislerp",
        help="merge method (default multislerp; opcm for repeated updates)",
    )
    up.add_argument(
        "--weights",
        default="auto",
        metavar="auto|A,B",
        help="merge weights of CURRENT and the update model; auto = in proportion to "
        "the examples each has seen",
    )
    up.add_argument(
        "--publish",
        action="store_true",
        help="publish the merged model as CURRENT's repo's next revision (tag vN)",
    )
    up.add_argument(
        "--replay-corpus",
        type=Path,
        default=None,
        metavar="OLD_CORPUS.yaml",
        help="the data CURRENT was trained on, for a model without zoo lineage",
    )
    up.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder the lineage's local dataset paths resolve against "
        "(default: NEW_CORPUS.yaml's folder)",
    )
    up.add_argument(
        "--update-repo",
        default=None,
        metavar="ORG/NAME",
        help="repo of the update models (default: CURRENT's repo + '-updates')",
    )
    up.add_argument(
        "--eval-task-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="task folder to evaluate CURRENT, the update and the result on (repeatable)",
    )
    up.add_argument("--out", type=Path, default=Path(".zoo/update"), help="working folder")
    _train_options(up)
    up.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(up)
    up.set_defaults(func=_cmd_update)


def _cmd_update(args: argparse.Namespace) -> int:
    from zoo.pipelines.update import UpdateOptions, parse_weights, update

    options = UpdateOptions(
        replay=args.replay,
        init=args.init,
        method=args.method,
        weights=parse_weights(args.weights),
        publish=args.publish,
        update_repo=args.update_repo,
        replay_corpus=args.replay_corpus,
        data_root=args.data_root,
        task_dirs=tuple(args.eval_task_dir),
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        train=_train_settings(args),
    )
    with _open(args, create=True) as hub:
        result = update(hub, args.current, args.corpus, options)
    data = {
        "current": result.current,
        "update": result.update,
        "recipe": str(result.recipe),
        "weights": list(result.weights),
        "new_rows": result.new_rows,
        "replay_rows": result.replay_rows,
        "published": result.merged.published,
        "tag": result.merged.tag,
        "out": str(result.merged.out),
    }
    text = "\n".join(
        [
            f"update model: {data['update']} ({data['new_rows']} new rows + "
            f"{data['replay_rows']} replayed)",
            f"recipe: {data['recipe']} (weights {result.weights[0]}, {result.weights[1]})",
            f"merged: {data['published'] or data['out']}"
            + (f" (tag {data['tag']})" if data["tag"] else ""),
        ]
    )
    _emit(args, data, text)
    return 0


def _add_eval(sub: Any) -> None:
    ev = sub.add_parser("eval", help="evaluate a model on MTEB tasks and/or local task folders")
    ev.add_argument("model", help="local model folder or REPO_ID[@REV]")
    ev.add_argument(
        "--tasks", nargs="+", default=[], metavar="NAME", help="MTEB task or benchmark names"
    )
    ev.add_argument(
        "--task-dir", action="append", default=[], metavar="DIR", help="task folder (repeatable)"
    )
    ev.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(ev)
    ev.set_defaults(func=_cmd_eval)
    card = sub.add_parser(
        "card", help="re-render a member's card; --update publishes it as a new revision"
    )
    card.add_argument("ref", help="REPO_ID[@REV]")
    card.add_argument("--update", action="store_true", help="commit the re-rendered card")
    _hub_options(card)
    card.set_defaults(func=_cmd_card)


def _cmd_eval(args: argparse.Namespace) -> int:
    from zoo.pipelines.evaluation import evaluate_model

    if not args.tasks and not args.task_dir:
        raise UserError("nothing to evaluate: give --tasks NAME ... and/or --task-dir DIR")
    report = evaluate_model(
        args.model,
        tasks=args.tasks,
        task_dirs=args.task_dir,
        hub=args.hub,
        token=args.token,
        batch_size=args.batch_size,
        progress=not args.json,
    )
    from zoo.eval import format_report

    _emit(args, json.loads(report.to_json()), format_report(report))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from zoo.hub.session import open_hub
    from zoo.pipelines.cards import card

    with open_hub(args.hub, args.token) as hub:
        text, sha = card(hub, args.ref, update=args.update)
    if args.update:
        print(f"{args.ref.split('@')[0]}@{sha}" if sha else f"{args.ref}: the card is up to date")
    else:
        print(text, end="")
    return 0


def _add_merge(sub: Any) -> None:
    merge = sub.add_parser("merge", help="merge checkpoints by recipe (mergekit YAML + zoo block)")
    merge.add_argument("recipe", nargs="?", type=Path, help="recipe YAML (omit with --lock)")
    merge.add_argument(
        "--out", type=Path, default=None, help="output folder (default merged/<name>)"
    )
    merge.add_argument("--publish", action="store_true", help="publish to zoo.publish.repo_id")
    merge.add_argument("--lock", type=Path, default=None, help="re-run a lock file byte for byte")
    merge.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved plan and estimated peak memory; read no weights",
    )
    merge.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:N or auto (GPU when present)"
    )
    merge.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle-only checkpoints (loaded with weights_only=True)",
    )
    merge.add_argument(
        "--search",
        action="store_true",
        help="run the recipe's zoo.search (grid or greedy soup scored on dev task "
        "folders) and merge the best candidate",
    )
    merge.add_argument(
        "--push-inputs",
        action="store_true",
        help="with --publish: first push each local input (NAMESPACE/<folder>, pinned)",
    )
    merge.add_argument("--quiet", action="store_true", help="no progress bar")
    merge.add_argument("--json", action="store_true", help="machine-readable output")
    _hub_options(merge)
    merge.set_defaults(func=_cmd_merge)


def _cmd_merge(args: argparse.Namespace) -> int:
    from zoo.pipelines.merging import MergeOptions, merge, prepare_merge

    options = MergeOptions(
        out=args.out,
        publish=args.publish,
        dry_run=args.dry_run,
        search=args.search,
        push_inputs=args.push_inputs,
        device=args.device,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
    )
    job = prepare_merge(args.recipe, args.lock, options)
    with _open(args, create=job.writes_hub, needed=job.needs_hub) as hub:
        outcome = merge(hub, job)
    if args.dry_run:
        _emit(args, outcome.plan, plan_text(outcome.plan))
        return 0
    data = {
        "out": str(outcome.out),
        "published": outcome.published,
        "tag": outcome.tag,
        "seconds": round(outcome.report.seconds, 3),
        "peak_rss_bytes": outcome.report.peak_rss_bytes,
        "files": dict(outcome.report.files),
        "plan": outcome.plan,
        "search": outcome.search,
    }
    text = str(outcome.out) + (
        f"\npublished {outcome.published} (tag {outcome.tag})" if outcome.published else ""
    )
    if outcome.search:
        best = outcome.search["trials"][outcome.search["best"]]
        text += (
            f"\nsearch ({outcome.search['strategy']}): {len(outcome.search['trials'])} candidates, "
            f"best {outcome.search['parameter']}={best['values']} (dev score {best['score']:.4f})"
        )
    _emit(args, data, text)
    return 0


def _hub_root(args: argparse.Namespace) -> Path:
    from zoo.hub.session import default_hub, is_url

    where = str(args.root or getattr(args, "hub", None) or default_hub())
    if is_url(where):
        raise UserError(f"{where} is a URL; this command needs a hub directory (--root DIR)")
    return Path(where).expanduser()


def _cmd_serve(args: argparse.Namespace) -> int:
    from zoo.hub.server import HubStore, serve

    root = _hub_root(args)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is out of range (0-65535)")
    HubStore(root)
    print(
        f"zoo hub: serving {root} on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr
    )
    serve(root, host=args.host, port=args.port)
    return 0


def _cmd_token_add(args: argparse.Namespace) -> int:
    from zoo.hub.server import HubStore

    print(HubStore(_hub_root(args)).add_token(args.name, write=args.write))
    return 0


def _open(args: argparse.Namespace, create: bool = False, needed: bool = True) -> Any:
    from zoo.hub.session import open_hub_if

    return open_hub_if(needed, args.hub, args.token, create=create)


def _cmd_push(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with _open(args, create=True) as hub:
        sha, meta = pipelines.push(
            hub,
            args.dir,
            args.repo_id,
            kind=args.kind,
            private=args.private,
            meta_kv=dict(args.meta),
            tag=args.tag,
        )
    _emit(args, {"repo_id": args.repo_id, "sha": sha, "kind": meta.kind}, f"{args.repo_id}@{sha}")
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with _open(args) as hub:
        members = pipelines.ls(hub, kind=args.kind, tags=tuple(args.tag), query=dict(args.meta))
    rows = [
        {
            "repo_id": m.repo_id,
            "sha": m.sha,
            "private": m.private,
            "meta": m.meta.model_dump(mode="json"),
        }
        for m in members
    ]
    _emit(args, rows, ls_table(members))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with _open(args) as hub:
        info = pipelines.show(hub, args.ref)
    _emit(args, info, show_text(info))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with _open(args) as hub:
        pulled = pipelines.pull(hub, args.ref, args.to)
    data = {
        "path": str(pulled.path),
        "repo_id": pulled.repo_id,
        "sha": pulled.sha,
        "verified_files": pulled.verified_files,
    }
    _emit(args, data, str(pulled.path))
    return 0


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if getattr(args, "json", False) else text)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zoo` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error (exit 2)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except UserError as exc:
        return _fail(args, exc, 2)
    except ZooError as exc:
        return _fail(args, exc, 1)
    except KeyboardInterrupt:
        sys.stderr.write("zoo: interrupted\n")
        return 130
    except OSError as exc:
        full = disk_full(exc)
        if full is None:
            return _fail(args, exc, 1, prefix=f"internal error ({type(exc).__name__}): ")
        return _fail(args, full, 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
        return _fail(args, exc, 1, prefix=f"internal error ({type(exc).__name__}): ")


def _fail(args: argparse.Namespace, exc: BaseException, code: int, prefix: str = "") -> int:
    if args.debug:
        traceback.print_exc()
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    sys.stderr.write(f"zoo: error: {prefix}{message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
