"""Audiences: who has lapsed, who just got an order, who is worth winning back — computed in SQL."""
