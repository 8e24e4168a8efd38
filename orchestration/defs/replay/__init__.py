"""Replay area: the job that replays dead letters through the current transform after a fix."""

import dagster as dg

from orchestration.defs.replay.jobs import replay_dead_letters

defs = dg.Definitions(jobs=[replay_dead_letters])
