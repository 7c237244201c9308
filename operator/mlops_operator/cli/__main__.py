"""`python -m mlops_operator.cli ...`: the `mlops` command without its console script."""

import sys

from mlops_operator.cli.main import main

sys.exit(main())
