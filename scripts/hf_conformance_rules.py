"""How scripts/hf_conformance.py classes a failing upstream test: an ordered rule table.

A rule matches when its test-name pattern (if any) matches `Class::test_name`, its error
pattern (if any) matches the failure text and its marker (if any) marks the test; the first match
wins (Hub products first, so a production test of Collections counts under Collections). A
failure no rule matches is a "zoo gap": the table can only excuse a failure by naming a Hub
product zoo does not host or the production data a test reads, never by listing one test as
passing. One class more: a "deliberate difference", a defence zoo keeps where the Hub is laxer,
matched by the test and by the refusal it meets, and each listed in BENCHMARKS.md.
"""

from __future__ import annotations

import re
from typing import NamedTuple

ZOO_GAP = "zoo gap"
PROD = "reads fixed production data"
DELIBERATE = "deliberate difference"


class Rule(NamedTuple):
    """`klass` and `reason` for failures whose name, text and markers match (all that are set)."""

    klass: str
    reason: str
    name: str | None = None
    error: str | None = None
    marker: str | None = None


def _scope(product: str) -> str:
    return f"out of scope: {product}"


# Repos that exist on huggingface.co (testing_constants.py and the tests' literals), and the hosts
# this machine cannot reach: a test that reads them measures production, not the server.
_PROD_REPOS = (
    r"julien-c/|hf-internal-testing/|lhoestq/|gaia-benchmark/|celinah/|brianronan/|"
    r"google-bert/|openai-community/|HuggingFaceH4/|Wauplin/|spaces/gradio/"
)
_UNREACHABLE = r"Name or service not known|Temporary failure in name resolution"

RULES: list[Rule] = [
    Rule(_scope("Inference Endpoints"), "dedicated inference deployments", name=r"(?i)inference"),
    Rule(_scope("Inference Endpoints"), "custom images of endpoints", name=r"custom_image"),
    Rule(_scope("Inference Endpoints"), "endpoint parallelism", name=r"parallelism"),
    Rule(_scope("Jobs"), "compute jobs and their volumes", name=r"Job|UvScript|Volume"),
    Rule(_scope("Storage Buckets"), "mutable object storage outside git", name=r"(?i)bucket"),
    Rule(_scope("Collections"), "curated lists of repos", name=r"(?i)collection"),
    Rule(_scope("Webhooks"), "event callbacks to user servers", name=r"(?i)webhook"),
    Rule(_scope("Gated access requests"), "accept/reject users of gated repos", name=r"Access"),
    Rule(_scope("Papers"), "daily papers pages", name=r"(?i)paper"),
    Rule(_scope("Likes and activity feed"), "social features", name=r"Activity|_like"),
    Rule(_scope("User profiles (followers, overview)"), "social graph", name=r"TestUserApi"),
    Rule(_scope("Spaces runtime"), "hardware, secrets, variables, logs", name=r"Space(?!Card)"),
    Rule(
        _scope("Spaces"), "zoo hosts models and datasets", error=r"unsupported repo type '?spaces?'"
    ),
    Rule(_scope("Dataset Viewer"), "parquet conversion and SQL", name=r"Parquet|Sql"),
    Rule(_scope("Agent skills (hf skills)"), "CLI marketplace from GitHub", name=r"(?i)skill"),
    Rule(_scope("CLI extensions (GitHub)"), "installs from GitHub repos", name=r"Extensions"),
    Rule(_scope("Enterprise organizations"), "orgs with private-by-default", error=r"enterprise"),
    Rule(
        DELIBERATE,
        "repo paths with a backslash are refused (422), a traversal defence kept on purpose",
        name=r"TestHfHubDownloadRelativePaths",
        error=r"422 Unprocessable Entity.*/preupload/",
    ),
    Rule(PROD, "marked production: runs against huggingface.co", marker="production"),
    Rule(PROD, "marked production: runs against huggingface.co", name=r"Production"),
    Rule(
        PROD, "expects hub-ci's fixture org valid_org_hub", name=r"test_whoami_with_passing_token"
    ),
    Rule(PROD, "reads a repo that exists on huggingface.co", error=_PROD_REPOS),
    Rule(PROD, "needs a host this machine cannot reach", error=_UNREACHABLE),
]
_COMPILED = [
    (r, re.compile(r.name) if r.name else None, re.compile(r.error) if r.error else None)
    for r in RULES
]


def error_lines(failure_text: str) -> str:
    """The failure's message and its `E   ...` lines: what was raised, not the test's source."""
    lines = failure_text.splitlines()
    return "\n".join(lines[:1] + [line for line in lines[1:] if line.startswith("E ")])


def classify(test_name: str, failure_text: str, markers: list[str] = ()) -> tuple[str, str]:
    """Return (class, reason) of one failing test; unmatched failures are zoo gaps.

    Error patterns see only error_lines(failure_text), so a test's source never excuses it.
    """
    failure_text = error_lines(failure_text)
    for rule, name, error in _COMPILED:
        if rule.marker is not None and rule.marker not in markers:
            continue
        if name is not None and not name.search(test_name):
            continue
        if error is not None and not error.search(failure_text):
            continue
        return rule.klass, rule.reason
    return ZOO_GAP, "no rule excuses it"
