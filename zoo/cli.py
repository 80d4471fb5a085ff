"""The `zoo` command: translate arguments, call one pipeline, print its result.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 any other failure; --debug shows the
traceback. The global options (--hub, --token, --debug) are accepted before and after the
subcommand. What is printed is rendered by zoo.cli_text; the training commands live in
zoo.cli_train.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from zoo import __version__
from zoo.cli_options import (
    GLOBAL_DEFAULTS,
    Parser,
    json_option,
    key_value,
    open_hub_for,
    positive_int,
)
from zoo.cli_text import (
    card_update_text,
    extract_text,
    ls_table,
    member_rows,
    merge_data,
    merge_text,
    output,
    plan_text,
    pull_data,
    pushed_text,
    show_text,
)
from zoo.cli_train import add_training_commands
from zoo.errors import UserError, ZooError, disk_full
from zoo.hub.metadata import KINDS, ZooMetadata


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; help text comes from the schema descriptions where one exists."""
    parser = Parser(prog="zoo", description="A Hub-centric model zoo for text-embedding models.")
    parser.set_defaults(**GLOBAL_DEFAULTS)
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_hub(sub)
    _add_push(sub)
    _add_ls(sub)
    _add_show_pull(sub)
    _add_merge(sub)
    _add_extract(sub)
    add_training_commands(sub)
    _add_eval(sub)
    _add_card(sub)
    return parser


def _add_hub(sub: Any) -> None:
    hub = sub.add_parser("hub", help="run and administer the embedded Hub").add_subparsers(
        dest="hub_command", required=True
    )
    serve = hub.add_parser("serve", help="serve a hub directory over HTTP (long-running)")
    serve.add_argument("--root", default=None, help="hub directory (default: as --hub)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_cmd_serve)
    token = hub.add_parser("token", help="manage access tokens").add_subparsers(
        dest="token_command", required=True
    )
    add = token.add_parser("add", help="create a token; prints it once, stores only its hash")
    add.add_argument("name", help="user name the token acts as")
    add.add_argument("--root", default=None, help="hub directory (default: as --hub)")
    add.add_argument("--write", action="store_true", help="allow writes (default: read-only)")
    add.set_defaults(func=_cmd_token_add)


def _add_push(sub: Any) -> None:
    fields = ZooMetadata.model_fields
    push = sub.add_parser("push", help="publish a model folder as a zoo member (one commit)")
    push.add_argument("dir", type=Path, help="local model folder")
    push.add_argument("repo_id", help="target repo 'namespace/name'")
    push.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help=fields["kind"].description + " (default: the kind in the folder's zoo.json; "
        "base for a folder without one, e.g. a checkpoint not made by zoo)",
    )
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument(
        "--meta",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=fields["labels"].description + "; base_model=, parents= set those fields",
    )
    push.add_argument("--tag", default=None, help="also tag the new commit")
    push.add_argument(
        "--as-lora",
        type=int,
        default=None,
        metavar="R",
        help="publish a full fine-tune as a rank-R LoRA adapter over its base_model "
        "(truncated SVD, see `zoo extract-lora`); the card says the energy kept",
    )
    push.add_argument(
        "--base",
        type=Path,
        default=None,
        help="with --as-lora: the base model folder (default: base_model pulled from the Hub)",
    )
    json_option(push)
    push.set_defaults(func=_cmd_push)


def _add_ls(sub: Any) -> None:
    ls = sub.add_parser("ls", help="list zoo members")
    kind = ZooMetadata.model_fields["kind"].description
    ls.add_argument("--kind", choices=KINDS, default=None, help=kind)
    ls.add_argument("--tag", action="append", default=[], help="Hub tag filter (repeatable)")
    ls.add_argument(
        "--meta",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata query, e.g. experiment=demo or ratio=0.4 (repeatable, AND)",
    )
    json_option(ls)
    ls.set_defaults(func=_cmd_ls)


def _add_show_pull(sub: Any) -> None:
    show = sub.add_parser("show", help="zoo metadata, revisions and lineage of a member")
    show.add_argument("ref", help="REPO_ID[@REV]")
    json_option(show)
    show.set_defaults(func=_cmd_show)
    pull = sub.add_parser("pull", help="download a member, verified; prints the local path")
    pull.add_argument("ref", help="REPO_ID[@REV]")
    pull.add_argument("--to", type=Path, default=None, help="target folder (default: the HF cache)")
    json_option(pull)
    pull.set_defaults(func=_cmd_pull)


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
    ev.add_argument(
        "--publish",
        action="store_true",
        help="commit the scores to the Hub repo MODEL as its next revision (.eval_results/, "
        "the card's model-index, results table and plot); scores of other tasks stay",
    )
    ev.add_argument(
        "--pr",
        action="store_true",
        help="with --publish: open the commit as a pull request (scores before/after)",
    )
    json_option(ev)
    ev.set_defaults(func=_cmd_eval)


def _add_card(sub: Any) -> None:
    card = sub.add_parser(
        "card", help="re-render a member's card; --update publishes it as a new revision"
    )
    card.add_argument("ref", help="REPO_ID[@REV]")
    card.add_argument("--update", action="store_true", help="commit the re-rendered card")
    card.set_defaults(func=_cmd_card)


def _cmd_eval(args: argparse.Namespace) -> int:
    from zoo.eval import format_report
    from zoo.pipelines.evaluation import evaluate_model, needs_hub

    if not args.tasks and not args.task_dir:
        raise UserError("nothing to evaluate: give --tasks NAME ... and/or --task-dir DIR")
    if args.pr and not args.publish:
        raise UserError("--pr needs --publish (it opens the scores' commit as a pull request)")
    if args.publish:
        return _eval_publish(args)
    with open_hub_for(args, needed=needs_hub(args.model)) as hub:
        report = evaluate_model(hub, args.model, **_eval_options(args))
    print(output(json.loads(report.to_json()), format_report(report), as_json=args.json))
    return 0


def _eval_options(args: argparse.Namespace) -> dict:
    """What `zoo eval` passes to an evaluation, published or not."""
    return {
        "tasks": args.tasks,
        "task_dirs": args.task_dir,
        "batch_size": args.batch_size,
        "progress": not args.json,
    }


def _eval_publish(args: argparse.Namespace) -> int:
    from zoo.eval import format_report
    from zoo.pipelines.eval_publish import publish_eval
    from zoo.pipelines.evaluation import needs_hub

    if not needs_hub(args.model):
        raise UserError(f"--publish: {args.model} is a local folder; give the Hub repo (REPO_ID)")
    with open_hub_for(args) as hub:
        done = publish_eval(hub, args.model, pr=args.pr, **_eval_options(args))
    data = {**json.loads(done.report.to_json()), "published": done.ref, "pr": done.pr_url}
    where = f"pull request {done.pr_url} ({done.ref})" if done.pr_url else done.ref
    text = f"{format_report(done.report)}\npublished {len(done.files)} files: {where}"
    print(output(data, text, as_json=args.json))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from zoo.pipelines.cards import card

    with open_hub_for(args) as hub:
        text, sha = card(hub, args.ref, update=args.update)
    if args.update:
        print(card_update_text(args.ref, sha))
    else:
        print(text, end="")
    return 0


def _add_publish_flags(merge: Any) -> None:
    merge.add_argument("--publish", action="store_true", help="publish to zoo.publish.repo_id")
    merge.add_argument(
        "--pr",
        action="store_true",
        help="with --publish: open a pull request on zoo.publish.repo_id (scores before/after) "
        "instead of pushing to main; merging it publishes the model",
    )
    merge.add_argument(
        "--push-inputs",
        action="store_true",
        help="with --publish: first push each local input (NAMESPACE/<folder>, pinned)",
    )


def _add_merge(sub: Any) -> None:
    merge = sub.add_parser("merge", help="merge checkpoints by recipe (mergekit YAML + zoo block)")
    merge.add_argument("recipe", nargs="?", type=Path, help="recipe YAML (omit with --lock)")
    merge.add_argument(
        "--out", type=Path, default=None, help="output folder (default merged/<name>)"
    )
    _add_publish_flags(merge)
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
        "--threads",
        type=positive_int,
        default=None,
        help="compute threads (default: every core); any count gives the same bytes",
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
    merge.add_argument("--quiet", action="store_true", help="no progress bar")
    merge.add_argument("--json", action="store_true", help="machine-readable output")
    merge.set_defaults(func=_cmd_merge)


def _cmd_merge(args: argparse.Namespace) -> int:
    from zoo.pipelines.merging import MergeOptions, merge, prepare_merge

    options = MergeOptions(
        out=args.out,
        publish=args.publish,
        pr=args.pr,
        dry_run=args.dry_run,
        search=args.search,
        push_inputs=args.push_inputs,
        device=args.device,
        threads=args.threads,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
    )
    job = prepare_merge(args.recipe, args.lock, options)
    with open_hub_for(args, create=job.writes_hub, needed=job.needs_hub) as hub:
        outcome = merge(hub, job)
    if args.dry_run:
        print(output(outcome.plan, plan_text(outcome.plan), as_json=args.json))
        return 0
    data = merge_data(outcome)
    print(output(data, merge_text(data), as_json=args.json))
    return 0


def _add_extract(sub: Any) -> None:
    ex = sub.add_parser(
        "extract-lora",
        help="a full fine-tune minus its base as a peft LoRA adapter (truncated SVD per matrix; "
        "what mergekit-extract-lora does)",
    )
    ex.add_argument("finetuned", type=Path, help="the fine-tuned model folder (HF or ST)")
    ex.add_argument("--base", "--base-model", required=True, type=Path, help="base model folder")
    ex.add_argument("--rank", "--max-rank", required=True, type=int, help="LoRA rank r (max)")
    ex.add_argument("--out", "--out-path", required=True, type=Path, help="adapter folder (new)")
    ex.add_argument(
        "--embed-lora",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="extract embeddings as LoRA too (default: saved whole in modules_to_save)",
    )
    ex.add_argument(
        "--save-module", action="append", default=[], help="save this module whole (repeatable)"
    )
    ex.add_argument("-i", "--include-regex", action="append", default=[], help="only these modules")
    ex.add_argument("-e", "--exclude-regex", action="append", default=[], help="not these modules")
    ex.add_argument("--sv-epsilon", type=float, default=0.0, help="drop singular values <= this")
    ex.add_argument(
        "--distribute-scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="split the singular values between A and B (sqrt each; default)",
    )
    ex.add_argument(
        "--skip-undecomposable",
        action="store_true",
        help="drop changed non-linear modules (LayerNorm, ...) instead of saving them whole",
    )
    json_option(ex)
    ex.set_defaults(func=_cmd_extract)


def _cmd_extract(args: argparse.Namespace) -> int:
    from zoo.merge.extract import ExtractSettings
    from zoo.pipelines.extract import extract

    settings = ExtractSettings(
        rank=args.rank,
        embed_lora=args.embed_lora,
        save_modules=tuple(args.save_module),
        include=tuple(args.include_regex),
        exclude=tuple(args.exclude_regex),
        sv_epsilon=args.sv_epsilon,
        distribute_scale=args.distribute_scale,
        skip_undecomposable=args.skip_undecomposable,
    )
    report = extract(args.finetuned, args.base, args.out, settings).to_dict()
    print(output(report, extract_text(report, args.out), as_json=args.json))
    return 0


def _hub_root(args: argparse.Namespace) -> Path:
    from zoo.hub.session import default_hub, is_url

    where = str(args.root or args.hub or default_hub())
    if is_url(where):
        raise UserError(f"{where} is a URL; this command needs a hub directory (--root DIR)")
    return Path(where).expanduser()


def _cmd_serve(args: argparse.Namespace) -> int:
    from zoo.hub.server import HubStore, serve
    from zoo.hub.server.run import base_url

    root = _hub_root(args)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is out of range (0-65535)")
    HubStore(root)
    url = base_url(args.host, args.port)
    print(f"zoo hub: serving {root} on {url} (Ctrl-C stops)", file=sys.stderr)
    print(f"zoo hub: open {url}/ in a browser (sign in with {root}/admin.token)", file=sys.stderr)
    serve(root, host=args.host, port=args.port)
    return 0


def _cmd_token_add(args: argparse.Namespace) -> int:
    from zoo.hub.server import HubStore

    print(HubStore(_hub_root(args)).add_token(args.name, write=args.write))
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from zoo import pipelines

    if args.base is not None and args.as_lora is None:
        raise UserError("--base: only with --as-lora R")
    common = dict(kind=args.kind, private=args.private, meta_kv=dict(args.meta), tag=args.tag)
    extra: dict[str, Any] = {}
    with open_hub_for(args, create=True) as hub:
        if args.as_lora is None:
            sha, meta = pipelines.push(hub, args.dir, args.repo_id, **common)
        else:
            from zoo.pipelines.extract import push_as_lora

            sha, meta, report = push_as_lora(
                hub, args.dir, args.repo_id, args.as_lora, base=args.base, **common
            )
            extra = {"lora_rank": report.rank, "retained_energy": report.retained}
    data = {"repo_id": args.repo_id, "sha": sha, "kind": meta.kind, **extra}
    print(output(data, pushed_text(data), as_json=args.json))
    if extra and not args.json:
        sys.stderr.write(
            f"LoRA r={extra['lora_rank']}: {extra['retained_energy']:.4%} of the energy kept\n"
        )
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with open_hub_for(args) as hub:
        members = pipelines.ls(hub, kind=args.kind, tags=tuple(args.tag), query=dict(args.meta))
    print(output(member_rows(members), ls_table(members), as_json=args.json))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with open_hub_for(args) as hub:
        info = pipelines.show(hub, args.ref)
    print(output(info, show_text(info), as_json=args.json))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from zoo import pipelines

    with open_hub_for(args) as hub:
        pulled = pipelines.pull(hub, args.ref, args.to)
    data = pull_data(pulled)
    print(output(data, data["path"], as_json=args.json))
    return 0


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
