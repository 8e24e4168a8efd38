"""The converter's loop: sources (a consumer group, or offset ranges), the pure batch router, the commit span, and
`pipeline.open_converter`, which assembles a converter from settings. Drives `streaming.delivery`.
"""
