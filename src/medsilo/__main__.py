"""``python -m medsilo``: the same CLI as the ``medsilo`` script."""

from medsilo.cli import main

main()
