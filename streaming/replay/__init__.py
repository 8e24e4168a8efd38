"""Replaying dead letters: which ones (`selection`), the replay's router and headers, its progress in its own consumer
group, and `run`, the shell `kdp replay` and the Dagster job call. Reuses the converter's loop.
"""
