"""The embedded Hub's web face: server-rendered pages at the Hub's own URL shapes.

`routes.WEB_ROUTES` are matched after the API's routes. Pages are Jinja2 templates (autoescaped)
rendered by `render.page`, which sets the security headers (CSP, nosniff, frame-ancestors).
Card markdown is rendered by markdown-it-py and sanitised by nh3 (`markdown.py`); mermaid, served
from `static/vendor/mermaid/` (copied from npm by scripts/web-assets.sh), draws the graphs.
"""
