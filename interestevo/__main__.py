"""``python -m interestevo``: the same as the ``interestevo`` command."""
from .cli import main

raise SystemExit(main())
