"""Aggregation of run metrics into the tidy table, paper-layout tables and figures."""
