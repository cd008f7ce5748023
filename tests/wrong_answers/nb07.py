"""Typical wrong answers to the exercises of notebook 07: each is a whole solution cell."""

WRONG = {}
