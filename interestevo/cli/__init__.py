"""The ``interestevo`` command line: :mod:`.main` (train, evaluate, recommend, info), :mod:`.serve`
(serve, forget, finetune) and their argument types (:mod:`.args`)."""
from .main import main

__all__ = ["main"]
