"""Results to answers: paired statistics, claims and verdicts, figures, the RESULTS writer."""
