"""The embedded, Hugging-Face-Hub-compatible server (Starlette + uvicorn, files on local disk).

Public API:
    HubStore(root)                      storage; .add_token(name, write), .admin_token() -> token
    create_app(root, **limits)          the ASGI app
    serve(root, host, port)             blocking server (`zoo hub serve`)
    serve_in_thread(root, host, port)   context manager yielding the base URL
"""

from zoo.hub.server.app import create_app
from zoo.hub.server.run import serve, serve_in_thread
from zoo.hub.server.store import HubStore

__all__ = ["HubStore", "create_app", "serve", "serve_in_thread"]
