"""`make bench`: the converter's throughput, latency and memory, measured side by side in one run.

`python -m bench.run` fills one backlog and runs every measured subject on it, each as its own process
with its own consumer group and output topics, then writes `bench/out/results.json` (git-ignored),
`bench/RESULTS.md`, and prints the same tables. `python -m bench.run --help` lists the knobs
(`--events`, `--latency-seconds`, `--skip`, ...). `bench/hot_path.py` is the separate, Kafka-free
micro-benchmark of the CPU path.

One concern per file:
- `run`: the steps in order, the budget, error handling and clean-up;
- `backlog`: the shared, pre-filled source topic;
- `subject`: what a measured process reports and how it is timed (first consume -> last commit);
- `runner`: starting subjects with their own topics (`Lane`) and collecting their reports;
- `converter_subject`: our converter, built as `kdp stream` builds it;
- `baselines/`: (a) `seed_design`, (b) `stock_serializer`, (c) `passthrough`;
- `kafka_perf`: (d) Kafka's ProducerPerformance and ConsumerPerformance;
- `peers/`: the same job in (e) Quix Streams and (f) Arroyo, and the venvs they run in (`environments`);
- `latency` (repeated runs, min / median / max), `cadence` (exactly-once commit cadence against latency and
  throughput), `scaling`, `memory`, `profile`: the other measurements;
- `targets`, `analysis`, `report`: ratios and verdicts, why a target was missed, and the outputs;
- `environment`, `kafka_admin`: machine facts and the few cluster calls.
"""
