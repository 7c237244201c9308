"""``python -m mlops_operator.audit``: the audit Job's entry point (see `mlops_operator.audit.program`)."""

import sys

from mlops_operator.audit.program import main

sys.exit(main())
