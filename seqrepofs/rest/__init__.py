"""REST service over a SeqRepo instance: GA4GH refget v2/v1 and the seqrepo REST API.

`create_app(Settings(instance_dir=...))` gives an ASGI app; `seqrepofs serve` runs it on uvicorn.
"""

from .app import create_app, run
from .service import Settings, resolve_source

__all__ = ["Settings", "create_app", "resolve_source", "run"]
