"""Sans-I/O reporting: statistic definitions, Erlang C/A, the live snapshot, Prometheus text.

Pure functions of records, views and the clock; no asyncio, sockets or SQL.
"""
