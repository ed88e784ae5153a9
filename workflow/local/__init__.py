"""The local runtime: loopback registries, moto as AWS, the real state machine run by moto's interpreter
(`runtime`, `bridges`, `distributed`: the Distributed Map as AWS runs it), and the demo (`demo`).

May import: every package (the top, beside cli.py and commands/).
"""
