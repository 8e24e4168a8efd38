"""Replay area: the job that replays dead letters through the current transform after a fix."""
