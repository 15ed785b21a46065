import sys

from training.ml.cli import main

sys.exit(main(claim_stdout=True))
