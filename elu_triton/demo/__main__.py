"""``python -m elu_triton.demo``: the same as the ``elu-triton-demo`` command."""

from . import main

raise SystemExit(main())
