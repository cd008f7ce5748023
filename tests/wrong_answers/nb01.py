"""Typical wrong answers to the exercises of notebook 01: each is a whole solution cell."""

WRONG = {}
