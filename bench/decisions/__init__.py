"""Experiments behind settled decisions (docs/decisions/), kept so their figures can be
reproduced: one folder per decision record, named by its number."""
