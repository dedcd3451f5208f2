"""The stemedb-gate stream processor: decision logic, faust app, local broker and tools."""

__version__ = "0.1.0"
