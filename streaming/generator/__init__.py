"""The load generator of `kdp generate`: login events (regular and irregular, from the rules declaration's inputs)
and the producing loop.
"""
