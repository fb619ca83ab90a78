"""`python -m msd_sample`: write sample raw files (see msd_sample/__init__.py)."""

from msd_sample import main

main()
