"""What limits a missed target, said with this run's own figures (CPU per message, profile, latency split).

Every sentence is computed from the results, never a canned claim: CPU per message of each subject (all
threads, over its measured interval), the top self-time entries of the converter's profile, and the two
halves of the latency. So the explanation stays true when the code or the machine changes.
"""

from __future__ import annotations

from typing import Any

from bench.latency import TAIL_WINDOW_MS, WARM_UP_S
from bench.targets import OURS_ALO, OURS_EOS, PASSTHROUGH, PEER_NAMES, SEED, STOCK, Verdict
from streaming.delivery.kafka_clients import consumer_config, producer_config
from streaming.generator.producer import PRODUCER_DEFAULTS
from streaming.settings import Settings

#: Where the experiments against the latency and memory targets are written down, with their measurements.
TRIED = "What was tried, and what each attempt measured: docs/converter.md#latency-and-memory-what-was-tried."


def _cpu(results: dict[str, Any], subject: str) -> float | None:
    return results.get("throughput", {}).get(subject, {}).get("cpu_us_per_msg")


def _profile_top(results: dict[str, Any], count: int = 4) -> str:
    profile = results.get("profile")
    if not profile or not profile.get("by_self"):
        return ""
    total = profile["profiled_seconds"] or 1.0
    parts = [f"{row['function']} {row['self_s'] / total:.0%}" for row in profile["by_self"][:count]]
    return "Profile, own time of the converter thread (waits included): " + ", ".join(parts) + "."


def _throughput(results: dict[str, Any], target: float) -> str:
    ours = results.get("throughput", {}).get(OURS_ALO, {})
    cpu, thread, passthrough = ours.get("cpu_us_per_msg"), ours.get("thread_cpu_us_per_msg"), _cpu(results, PASSTHROUGH)
    if cpu is None:
        return ""
    nproc = results.get("environment", {}).get("nproc")
    load = results.get("load_average", {})
    text = f"One process spends {cpu:.1f} µs of CPU per message across its threads"
    if thread:
        text += (
            f", {thread:.1f} µs of it in the converter's Python thread (which therefore tops out near "
            f"{1e6 / thread:,.0f} msg/s even with a core to itself)"
        )
    if passthrough:
        text += f"; pass-through spends {passthrough:.1f} µs only moving messages"
    text += (
        f". {target:,.0f} msg/s would take {cpu * target / 1e6:.2f} cores for the converter alone, on a machine "
        f"of {nproc} cores that also runs the broker (load average {load.get('start', ['?'])[0]} at start, "
        f"{load.get('end', ['?'])[0]} at end)."
    )
    return f"{text} {_profile_top(results)}".strip()


def _ratio(results: dict[str, Any], key: str, threshold: float) -> str:
    ours, seed, stock, passthrough = (_cpu(results, s) for s in (OURS_ALO, SEED, STOCK, PASSTHROUGH))
    if key == "ours_over_seed" and seed and passthrough and ours:
        ceiling = results["throughput"][PASSTHROUGH]["msg_per_s"] / results["throughput"][SEED]["msg_per_s"]
        return (
            f"Pass-through, which does nothing per message, is itself only {ceiling:.2f}x the seed "
            f"({passthrough:.1f} vs {seed:.1f} µs CPU per message), so no converter in one Python process reaches "
            f"{threshold:g}x here. Per message, ours also validates with reason codes, writes dead letters and Avro "
            f"in wire format, produces idempotently with acks=all and lz4, and commits after delivery; the seed does "
            f"none of that ({ours:.1f} vs {seed:.1f} µs CPU per message)."
        )
    if key == "ours_over_stock" and stock and ours:
        return (
            f"Only the encoder differs: {stock:.1f} µs CPU per message with the stock AvroSerializer, {ours:.1f} with "
            f"ours. For {threshold:g}x ours would have to cost at most {stock / threshold:.1f} µs per message, "
            f"{ours - stock / threshold:.1f} µs less than now"
            + (f", while pass-through alone costs {passthrough:.1f}" if passthrough else "")
            + f". {_profile_top(results)}"
        )
    if key == "ours_over_passthrough" and passthrough and ours:
        return (
            f"Ours costs {ours:.1f} µs CPU per message, pass-through {passthrough:.1f}: "
            f"the {ours - passthrough:.1f} µs between them is the transform, the encoder and the loop's "
            "per-message work. "
            f"{threshold:.0%} needs ours at or under {passthrough / threshold:.1f} µs. {_profile_top(results)}"
        )
    if key == "eos_over_alo":
        alo, eos = (results.get("throughput", {}).get(s, {}) for s in (OURS_ALO, OURS_EOS))
        batches = eos.get("details", {}).get("batches")
        if alo.get("seconds") and eos.get("seconds") and batches:
            extra = (eos["seconds"] - alo["seconds"]) / batches * 1000
            return (
                f"Exactly-once commits one transaction per batch: {extra:.1f} ms more per batch of {batches} batches."
            )
    return ""


def _peer(results: dict[str, Any], peer: str, threshold: float) -> str:
    throughput = results.get("throughput", {})
    ours, theirs = throughput.get(OURS_ALO, {}), throughput.get(peer, {})
    if not ours.get("cpu_us_per_msg") or not theirs.get("cpu_us_per_msg"):
        return ""
    stock = _cpu(results, STOCK)
    text = (
        f"{PEER_NAMES[peer]} spends {theirs['cpu_us_per_msg']:.1f} µs of CPU per message, ours "
        f"{ours['cpu_us_per_msg']:.1f}: {threshold:g}x needs ours at or under "
        f"{theirs['cpu_us_per_msg'] / threshold:.1f} µs."
    )
    if stock:
        text += f" Both peers encode with the stock AvroSerializer, which alone puts row (b) at {stock:.1f} µs."
    return f"{text} {_profile_top(results)}".strip()


def _cpu_over_passthrough(results: dict[str, Any], threshold: float) -> str:
    ours, passthrough = _cpu(results, OURS_ALO), _cpu(results, PASSTHROUGH)
    if not ours or not passthrough:
        return ""
    return (
        f"Ours costs {ours:.1f} µs CPU per message, pass-through {passthrough:.1f}: {threshold:g}x needs ours at or "
        f"under {passthrough * threshold:.1f} µs, {ours - passthrough * threshold:.1f} µs less than now; the "
        f"{ours - passthrough:.1f} µs between the two is the transform, the encoder and the loop's per-message work. "
        f"{_profile_top(results)}"
    ).strip()


def _latency(results: dict[str, Any], threshold: float, delivery: str = "at-least-once") -> str:
    latency = results.get("latency", {}).get(delivery)
    if not latency or "latency_ms" not in latency:
        return ""
    before, after = latency["produced_to_batch_start_ms"], latency["batch_start_to_visible_ms"]
    total = latency["latency_ms"]
    p99 = latency.get("over_runs", {}).get("p99")
    spread = (
        f"p99 over {latency.get('repetitions')} runs: {p99['min']:.0f} / {p99['median']:.0f} / {p99['max']:.0f} ms "
        "(min / median / max). In the first run, "
        if p99
        else ""
    )
    split = (
        f"f a median {total['p50']:.0f} ms (p99 {total['p99']:.0f}), {before['p50']:.0f} ms "
        f"(p99 {before['p99']:.0f}) pass before the converter starts the record's batch (generator linger, broker, "
        f"and the converter finishing its previous batch) and {after['p50']:.0f} ms (p99 {after['p99']:.0f}) from "
        "batch start to visible (convert the batch, produce, flush, commit, fetch)."
    )
    text = spread + ("o" if spread else "O") + split
    if before["p50"] > total["p50"] / 2:
        text += (
            " Most of it is spent before the batch starts. The converter does not wait to fill a batch (a poll takes "
            "what is fetched as soon as one message is there, `streaming.loop.sources`), so that half is the "
            "generator's "
            f"linger ({PRODUCER_DEFAULTS['linger.ms']} ms), the broker's append and the consumer's fetch, and the "
            "converter finishing the batch before (the batch-to-visible half again, commit included)."
        )
    text += _tail(latency)
    held, stages = latency.get("p99_held_by_over_runs"), latency.get("stages_over_runs") or {}
    if held in stages:
        text += (
            f" Of a batch's own stages, {held} has the largest p99: {stages[held]['p99_ms']} ms per batch (median "
            "over the runs; the stage table has them all)."
        )
    if delivery == "exactly-once":
        text += (
            " Exactly-once output becomes visible only when its transaction commits, so the commit's round trips "
            "to the transaction coordinator are part of batch to visible; the cadence table shows the trade-off."
        )
    return text + f" {TRIED}"


def _tail(latency: dict[str, Any]) -> str:
    """What the runs' slowest records and warm-ups show (`bench.latency.tail_split`), '' for older results."""
    runs = [run for run in latency.get("runs") or [] if run.get("tail")]
    if not runs:
        return ""
    windows = " / ".join(str(run["tail"]["windows"]) for run in runs)
    worst = max(runs, key=lambda run: run["latency_ms"]["p99"])
    tail = worst["tail"]
    text = (
        f" The records at or over each run's p99 fall in {windows} windows of {TAIL_WINDOW_MS} ms of produce time; "
        f"in the run with the largest p99 ({worst['latency_ms']['p99']:.0f} ms) they waited "
        f"{tail['to_batch_mean_ms']:.0f} ms on average before their batch started and "
        f"{tail['batch_to_visible_mean_ms']:.0f} ms after."
    )
    warm_ups = [(run.get("warm_up_ms") or {}).get("max") for run in runs]
    if all(value is not None for value in warm_ups):
        text += (
            f" Left out as warm-up (the first {WARM_UP_S:g} s of each run): latencies up to "
            f"{' / '.join(f'{value:.0f}' for value in warm_ups)} ms."
        )
    return text


def explain(verdict: Verdict, results: dict[str, Any]) -> str:
    """Why `verdict` missed its target, from the run's figures; '' when met or nothing can be said."""
    if verdict.met is not False:
        return ""
    key, threshold = verdict.target.key, verdict.target.threshold
    if key == "alo_msg_per_s":
        return _throughput(results, threshold)
    if key == "latency_p99_ms_alo":
        return _latency(results, threshold)
    if key == "latency_p99_ms_eos":
        return _latency(results, threshold, "exactly-once")
    if key == "cpu_over_passthrough":
        return _cpu_over_passthrough(results, threshold)
    if key.startswith("ours_over_") and key.endswith("_cpu"):
        return _peer(results, key.removeprefix("ours_over_").removesuffix("_cpu"), threshold)
    if key == "peak_rss_mb":
        settings = Settings.from_env()
        prefetch = int(consumer_config(settings)["queued.max.messages.kbytes"]) // 1024  # type: ignore[call-overload]
        unacknowledged = int(producer_config(settings)["queue.buffering.max.kbytes"]) // 1024  # type: ignore[call-overload]
        return (
            f"Peak RSS includes librdkafka's queues, bounded by the client settings: up to {prefetch} MB of "
            f"prefetched messages and {unacknowledged} MB of unacknowledged output. {TRIED}"
        )
    return _ratio(results, key, threshold)
