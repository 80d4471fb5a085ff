"""The zoo command's training commands: `data suite build`, `bag train`, `boom`, `update`.

Each `_add_*` declares one command's arguments (help from TrainConfig's field descriptions where
one exists); each `_cmd_*` translates them, calls one pipeline and prints the result. The global
options (--hub, --token, --debug) come with every parser (zoo.cli_options).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zoo.cli_options import json_option, open_hub_for
from zoo.cli_text import (
    bag_row,
    bags_text,
    boom_data,
    boom_text,
    output,
    suite_text,
    update_data,
    update_text,
)


def add_training_commands(sub: Any) -> None:
    """Add data, bag, boom and update to the subcommands of the zoo parser."""
    _add_data(sub)
    _add_bag(sub)
    _add_boom(sub)
    _add_update(sub)


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


def _eval_task_dirs(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--eval-task-dir", action="append", default=[], metavar="DIR", help=help)


def _train_options(p: argparse.ArgumentParser) -> None:
    """Training settings shared by `bag train`, `boom` and `update`; help from TrainConfig."""
    from zoo.train.config import TrainConfig

    f = TrainConfig.model_fields
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora-r", type=int, default=None, help=f["lora_r"].description)
    mode.add_argument("--full", action="store_true", help="full fine-tuning (the default)")
    p.add_argument("--lora-alpha", type=int, default=None, help=f["lora_alpha"].description)
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and training")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f["steps"].description)
    length.add_argument("--epochs", type=float, default=None, help=f["epochs"].description)
    p.add_argument("--batch-size", type=int, default=None, help=f["batch_size"].description)
    p.add_argument("--lr", type=float, default=None, help=f["learning_rate"].description)
    p.add_argument("--max-seq-length", type=int, default=None, help=f["max_seq_length"].description)
    p.add_argument(
        "--checkpoint-every", type=int, default=None, help=f["checkpoint_every"].description
    )
    p.add_argument("--bootstrap", action="store_true", help="sample with replacement")


def _train_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line (the rest keep TrainConfig's defaults)."""
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


def _add_data(sub: Any) -> None:
    data = sub.add_parser("data", help="training and evaluation data").add_subparsers(
        dest="data_command", required=True
    )
    suite = data.add_parser("suite", help="the offline real-data suite").add_subparsers(
        dest="suite_command", required=True
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
    json_option(build)
    build.set_defaults(func=_cmd_suite_build)


def _cmd_suite_build(args: argparse.Namespace) -> int:
    from zoo import pipelines
    from zoo.types import check_repo_id

    if args.push:
        check_repo_id(args.push)  # before the Hub directory is created
    with open_hub_for(args, create=True, needed=bool(args.push)) as hub:
        path, pushed = pipelines.build_suite(hub, args.size, args.out, push=args.push)
    data = {"path": str(path), "pushed": pushed}
    print(output(data, suite_text(data), as_json=args.json))
    return 0


def _add_bag(sub: Any) -> None:
    bag = sub.add_parser("bag", help="BOOM bags").add_subparsers(dest="bag_command", required=True)
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
    _bag_outputs(train)
    train.add_argument("--executor", choices=("local", "ray"), default="local", help="local or ray")
    train.add_argument("--workers", type=int, default=1, help="local processes training at once")
    json_option(train)
    train.set_defaults(func=_cmd_bag_train)


def _bag_outputs(train: argparse.ArgumentParser) -> None:
    """Where `bag train` writes, publishes and evaluates its bags."""
    train.add_argument(
        "--push-to",
        default=None,
        metavar="ORG/PREFIX",
        help="publish each bag as ORG/PREFIX-<ratio> (kind=bag)",
    )
    train.add_argument(
        "--experiment", default=None, help="experiment name (default: the prefix's name)"
    )
    _eval_task_dirs(train, "evaluate each bag on this task folder; scores go into its metadata")
    train.add_argument("--out", type=Path, default=Path(".zoo/bags"), help="where bags are trained")


def _cmd_bag_train(args: argparse.Namespace) -> int:
    from zoo.pipelines.bags import BagOptions, prepare_bags, train_bags

    options = BagOptions(
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
    )
    job = prepare_bags(args.corpus, options)
    with open_hub_for(args, create=True, needed=job.needs_hub) as hub:
        outcomes = train_bags(hub, job)
    rows = [bag_row(o) for o in outcomes]
    print(output(rows, bags_text(rows), as_json=args.json))
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
    _boom_outputs(boom)
    boom.add_argument("--out", type=Path, default=Path(".zoo/boom"), help="working folder")
    _train_options(boom)
    json_option(boom)
    boom.set_defaults(func=_cmd_boom)


def _boom_outputs(boom: argparse.ArgumentParser) -> None:
    """Where `boom` publishes the merged model, the bags and the baseline, and what it evaluates."""
    boom.add_argument(
        "--publish", required=True, metavar="ORG/NAME", help="repo of the merged model"
    )
    _eval_task_dirs(boom, "task folder to evaluate base, bags and merged model on (repeatable)")
    boom.add_argument(
        "--bag-prefix", default=None, metavar="ORG/PREFIX", help="bag repos (default ORG/bag)"
    )
    boom.add_argument(
        "--bls",
        default=None,
        metavar="ORG/NAME",
        help="also publish the batch-level-shuffling baseline (the ratio-1.0 bag) here",
    )


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
    with open_hub_for(args, create=True) as hub:
        result = boom(hub, args.corpus, options)
    data = boom_data(result)
    print(output(data, boom_text(data), as_json=args.json))
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
    _update_training(up)
    _update_merging(up)
    _update_sources(up)
    _eval_task_dirs(
        up, "task folder to evaluate CURRENT, the update and the result on (repeatable)"
    )
    up.add_argument("--out", type=Path, default=Path(".zoo/update"), help="working folder")
    _train_options(up)
    json_option(up)
    up.set_defaults(func=_cmd_update)


def _update_training(up: argparse.ArgumentParser) -> None:
    """What `update` trains the update model on, and from which weights."""
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


def _update_merging(up: argparse.ArgumentParser) -> None:
    """How `update` merges the update model into CURRENT, and whether it publishes the result."""
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
        "--pr",
        action="store_true",
        help="propose the merged model as a pull request on CURRENT's repo instead, its "
        "description showing per-task scores before and after (forgetting and gain); "
        "merging it publishes the model",
    )


def _update_sources(up: argparse.ArgumentParser) -> None:
    """Where `update` finds CURRENT's history and puts the update models."""
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


def _cmd_update(args: argparse.Namespace) -> int:
    from zoo.pipelines.update import UpdateOptions, parse_weights, update

    options = UpdateOptions(
        replay=args.replay,
        init=args.init,
        method=args.method,
        weights=parse_weights(args.weights),
        publish=args.publish,
        pr=args.pr,
        update_repo=args.update_repo,
        replay_corpus=args.replay_corpus,
        data_root=args.data_root,
        task_dirs=tuple(args.eval_task_dir),
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        train=_train_settings(args),
    )
    with open_hub_for(args, create=True) as hub:
        result = update(hub, args.current, args.corpus, options)
    data = update_data(result)
    print(output(data, update_text(data), as_json=args.json))
    return 0
