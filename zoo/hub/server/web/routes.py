"""The web face's routes, at the Hub's own URL shapes (matched on the raw path, after the API's).

A repo is `/{ns}/{name}` for models and `/datasets/{ns}/{name}` for datasets; the first group of
every repo route is 'datasets' or None, as in the API's resolve route.
"""

from __future__ import annotations

import re

from zoo.hub.server.web import pages_auth as AU
from zoo.hub.server.web import pages_discussions as D
from zoo.hub.server.web import pages_list as L
from zoo.hub.server.web import pages_repo as P
from zoo.hub.server.web import pages_zoo as Z
from zoo.hub.server.web import static_files as S

_S = r"([^/]+)"
_REPO = rf"/(?:(datasets)/)?{_S}/{_S}"

WEB_ROUTES: list[tuple[tuple[str, ...], re.Pattern, object]] = [
    (methods, re.compile(pattern), handler)
    for methods, pattern, handler in [
        (("GET",), r"/", L.models_page),
        (("GET",), r"/models", L.models_page),
        (("GET",), r"/datasets", L.datasets_page),
        (("GET",), r"/login", AU.login_form),
        (("POST",), r"/login", AU.login),
        (("POST",), r"/logout", AU.logout),
        (("GET",), r"/static/([A-Za-z0-9_./-]+)", S.static_file),
        (("GET",), r"/favicon\.ico", S.favicon),
        (("GET",), r"/zoo/experiments", Z.experiments_page),
        (("GET",), rf"/zoo/experiments/{_S}", Z.experiment_page),
        (("GET",), rf"{_REPO}/tree-of-models", Z.tree_of_models_page),
        (("GET",), r"/([A-Za-z0-9][\w.-]*)", L.namespace_page),
        (("GET",), _REPO, P.repo_page),
        (("GET",), rf"{_REPO}/tree/{_S}(?:/(.*))?", P.tree_page),
        (("GET",), rf"{_REPO}/blob/{_S}/(.+)", P.blob_page),
        (("GET",), rf"{_REPO}/raw/{_S}/(.+)", P.raw_file),
        (("GET",), rf"{_REPO}/commits/{_S}(?:/(.+))?", P.commits_page),
        (("GET",), rf"{_REPO}/commit/{_S}", P.commit_page),
        (("GET",), rf"{_REPO}/discussions", D.discussions_page),
        (("GET",), rf"{_REPO}/discussions/{_S}", D.discussion_page),
    ]
]

# The one POST the session cookie counts for: signing out (signing in needs no session).
COOKIE_POSTS = {AU.logout}
