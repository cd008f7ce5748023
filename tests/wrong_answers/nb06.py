"""Typical wrong answers to the exercises of notebook 06: each is a whole solution cell."""

WRONG = {}
