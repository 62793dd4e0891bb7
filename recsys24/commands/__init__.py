"""Click commands, one module per pipeline stage; ``recsys24.cli`` registers them.

Each module defines click commands and a ``COMMANDS`` list. A command parses
its options and calls one library function; no logic lives here.
"""
