"""The `mailpin run` path: the wrapper's invocation, verified, then handed over to the real tool."""
