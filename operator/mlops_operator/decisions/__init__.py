"""Pure policies: given what was gathered, decide (retrain, promote, roll back); no I/O."""
