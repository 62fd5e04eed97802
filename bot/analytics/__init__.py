"""Analytics: NPS and CSAT, uplift against the holdout, churn, retention and LTV — pure maths.

Every function here takes plain numbers or sequences and returns plain numbers or frozen
dataclasses; the database queries and the CLI that feed them live elsewhere. See docs/reports.md.
"""
