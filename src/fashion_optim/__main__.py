"""``python -m fashion_optim``: see :mod:`fashion_optim.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
