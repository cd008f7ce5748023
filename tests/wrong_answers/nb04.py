"""Typical wrong answers to the exercises of notebook 04: each is a whole solution cell."""

WRONG = {}
