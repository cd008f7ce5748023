"""Typical wrong answers to the exercises of notebook 05: each is a whole solution cell."""

WRONG = {}
