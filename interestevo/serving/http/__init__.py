"""The HTTP face of the service (``interestevo serve``): a FastAPI app over an
:class:`~interestevo.serving.InterestTracker`. It parses and answers; the tracker computes.

One module per concern: :mod:`.schemas` (requests and answers), :mod:`.routes`, :mod:`.errors`
(which error is which status), :mod:`.auth` (API keys), :mod:`.gate` (body size, path shape),
:mod:`.batching`, :mod:`.metrics`, :mod:`.reload`; :mod:`.service` holds what the routes share
and :mod:`.app` puts them together.
"""
from .app import create_app
from .auth import read_api_keys
from .service import Service, ServiceSettings

__all__ = ["Service", "ServiceSettings", "create_app", "read_api_keys"]
