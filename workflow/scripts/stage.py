# Snakemake `script:` entry of every rule: dispatches to synthvad.stages by rule name.
import sys
from pathlib import Path

# The package lives next to this folder; make it importable in any environment
# (a conda env built by --sdm conda need not have it installed).
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from synthvad.stages import run  # noqa: E402

run(snakemake)  # noqa: F821
