"""``python -m core``: the command-line interface, one module of verbs per stage."""
