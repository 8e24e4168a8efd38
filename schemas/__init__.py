"""The Avro contracts of the pipeline (`*.avsc`, documented in README.md): data, not code.

A package only so that the files travel in the wheel and are found without a checkout, through
`streaming.package_files.package_file("schemas/<name>.avsc")`.
"""
