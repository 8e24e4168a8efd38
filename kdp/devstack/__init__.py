"""A local Kafka 4.3 (KRaft) and Confluent-compatible schema registry (Apicurio 3.3), from Maven Central.

Tooling for people and tests, not part of the pipeline: the pipeline only knows a bootstrap address and a
registry URL. Entry points: `kdp stack up|down|status|logs` (`kdp.devstack.cli`), and for code and tests
`kdp.devstack.stack.LocalStack(StackConfig.from_env(...)).up(brokers=...) -> StackInfo`.
"""
