"""Typical wrong answers to the exercises of notebook 03: each is a whole solution cell."""

WRONG = {}
