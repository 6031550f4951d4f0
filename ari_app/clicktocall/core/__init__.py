"""Sans-I/O core of click-to-call: limits, statuses and tokens; time is always passed in."""
