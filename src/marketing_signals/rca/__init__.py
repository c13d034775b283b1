"""Root causes (issue 7): Correlate and the hypothesis ranker."""
