"""How a batch's outputs reach the brokers and its source offsets are committed: the `Delivery` contract
(`contract`), its at-least-once and exactly-once strategies, the outputs they produce, dead-letter headers,
back-pressure, and the Kafka clients each mode needs. Never imports the loop that drives it.
"""
