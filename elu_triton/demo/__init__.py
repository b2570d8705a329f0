"""The digit-training demo: the original walkthrough's network, trained with LearnableELU.

Run ``elu-triton-demo`` (or ``python -m elu_triton.demo``); ``--help`` lists the flags.
Modules, one job each: ``typefaces`` and ``digits`` (the built-in synthetic data),
``mnist`` (IDX reader), ``model`` (the network), ``train`` (loop and evaluation),
``baseline`` (linear yardstick of the data's difficulty), ``report`` (printed
output), ``figures`` (PNGs), ``memory`` (``--fused-batchnorm``: fusing and the
activation memory it saves), ``run`` (a run: data, training, evaluation),
``summary`` (what a run found, printed and written), ``cli`` (the command line).
"""

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo command line; returns the exit status (see ``cli.main``)."""
    from .cli import main as cli_main  # imported on call: `import elu_triton.demo` stays light

    return cli_main(argv)


__all__ = ["main"]
