"""The ``wayline`` command line: the composition of the protocol, edge, cloud and simulator."""

__all__: list[str] = []
