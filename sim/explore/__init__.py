"""Answers with their uncertainty: verdicts over the plausible set, and where filtering pays."""
