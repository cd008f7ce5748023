"""Typical wrong answers to the exercises of notebook 02: each is a whole solution cell."""

WRONG = {}
