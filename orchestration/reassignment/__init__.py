"""Partition reassignment: a pure planner (least data movement, balanced, rack-aware) and Kafka adapters.

- `planner`: `plan_reassignment(current, brokers, racks, replication_factor) -> Plan` (pure).
- `plan_json`: Kafka's reassignment JSON (`Plan.to_json()`, `Plan.rollback_json()`).
- `cluster_state`: the current assignment and racks of a live cluster (confluent-kafka).
- `executor`: execute a plan with a replication throttle, verify, always remove the throttle (kafka-python).

Only the pure parts are imported here, so planning needs no Kafka client.
"""

from orchestration.reassignment.planner import Plan, plan_from_proposal, plan_reassignment

__all__ = ["Plan", "plan_from_proposal", "plan_reassignment"]
